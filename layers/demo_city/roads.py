"""The synthetic road network: a jittered grid with expressways, arterials and local roads.

Expressways cross other roads only at arterial interchanges (local roads stop short of them),
as grade separation does in reality; that keeps "which road is this fix on" unambiguous for the
speed-limit rules (80 km/h on expressways, 60 elsewhere, docs/domain.md §3). Routing is Dijkstra on
travel time from every hub (parking lot access node) once, so any trip that starts or ends at a
lot is a path look-up.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from layers.demo_city.config import HEIGHT_M, WIDTH_M, to_xy

EXPRESSWAY, ARTERIAL, LOCAL = 0, 1, 2
CLASS_NAMES = ("expressway", "arterial", "local")
SPEED_LIMIT = (80.0, 60.0, 60.0)
#: Typical tanker speeds (km/h) used for routing weights.
ROUTING_SPEED = (72.0, 48.0, 33.0)
SPACING_M = 1200.0

_SURNAMES = (
    "中山 解放 人民 江东 江南 环城 兴宁 甬江 天童 四明 东钱 鄞县 福明 曙光 宁穿 通途 "
    "世纪 民安 沧海 钱湖 前程 惊驾 院士 柳汀 望春 机场 联丰 段塘 新典 泰康 百丈 中兴 北环 "
    "南环 启运 学士 长春 大庆 金山 昆仑 黄山 太河 华山 明州 庐山 嵩山 恒山 泰山 衡山 岷山"
)
EXPRESS_NAMES = {
    "h_main": "G92杭州湾环线高速",
    "v_main": "G15沈海高速",
    "ring": "G1504宁波绕城高速",
    "port": "S20穿山疏港高速",
}


@dataclass
class Network:
    node_x: np.ndarray
    node_y: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_cls: np.ndarray
    edge_len: np.ndarray
    edge_name: list[str]
    adj: list[list[tuple[int, int]]]  # node -> [(neighbour, edge)]
    trees: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def nodes_in_main(self) -> np.ndarray:
        return np.flatnonzero(np.array([len(a) > 0 for a in self.adj]))

    def route_tree(self, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(seconds, predecessor node, predecessor edge) from ``src``, cached."""
        if src not in self.trees:
            self.trees[src] = _dijkstra(self, src)
        return self.trees[src]

    def path(self, src: int, dst: int) -> tuple[list[int], list[int]]:
        """Nodes and edges of the fastest path src → dst (uses the tree of whichever is cached)."""
        if src == dst:
            return [src], []
        if dst in self.trees and src not in self.trees:
            nodes, edges = self._walk(dst, src)
            return nodes[::-1], edges[::-1]
        return self._walk(src, dst)

    def _walk(self, src: int, dst: int) -> tuple[list[int], list[int]]:
        _, pred, pred_e = self.route_tree(src)
        nodes = [dst]
        edges: list[int] = []
        n = dst
        while n != src:
            p = int(pred[n])
            if p < 0:
                raise ValueError(f"node {dst} unreachable from {src}")
            edges.append(int(pred_e[n]))
            nodes.append(p)
            n = p
        return nodes[::-1], edges[::-1]


def _dijkstra(net: Network, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(net.node_x)
    dist = [float("inf")] * n
    pred = [-1] * n
    pred_e = [-1] * n
    weight = (net.edge_len / (np.take(ROUTING_SPEED, net.edge_cls) / 3.6)).tolist()
    adj = net.adj
    dist[src] = 0.0
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, e in adj[u]:
            nd = d + weight[e]
            if nd < dist[v]:
                dist[v] = nd
                pred[v] = u
                pred_e[v] = e
                heapq.heappush(heap, (nd, v))
    return np.array(dist), np.array(pred), np.array(pred_e)


def make_network(rng: np.random.Generator) -> Network:
    nx = round(WIDTH_M / SPACING_M) + 1
    ny = round(HEIGHT_M / SPACING_M) + 1
    sx, sy = WIDTH_M / (nx - 1), HEIGHT_M / (ny - 1)
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="xy")
    node_x = ii.ravel() * sx + rng.uniform(-110, 110, ii.size) * (ii.ravel() % (nx - 1) != 0)
    node_y = jj.ravel() * sy + rng.uniform(-110, 110, ii.size) * (jj.ravel() % (ny - 1) != 0)

    def col(lon: float) -> int:
        return round(float(to_xy(lon, 29.9)[0]) / sx)

    def row(lat: float) -> int:
        return round(float(to_xy(121.5, lat)[1]) / sy)

    # Expressway segments as (horizontal?, line index, from, to, name).
    express = [
        (True, row(29.955), 0, nx - 1, EXPRESS_NAMES["h_main"]),
        (False, col(121.50), 0, ny - 1, EXPRESS_NAMES["v_main"]),
        (True, row(29.78), col(121.43), col(121.74), EXPRESS_NAMES["ring"]),
        (True, row(30.04), col(121.43), col(121.74), EXPRESS_NAMES["ring"]),
        (False, col(121.43), row(29.78), row(30.04), EXPRESS_NAMES["ring"]),
        (False, col(121.74), row(29.78), row(30.04), EXPRESS_NAMES["ring"]),
        (True, row(29.90), col(121.74), col(122.08), EXPRESS_NAMES["port"]),
    ]
    h_names = rng.permutation(_SURNAMES.split())
    v_names = rng.permutation(_SURNAMES.split())

    def node(i: int, j: int) -> int:
        return j * nx + i

    edges: dict[tuple[int, int], tuple[int, str]] = {}
    for j in range(ny):
        for i in range(nx - 1):
            cls = ARTERIAL if j % 4 == 2 else LOCAL
            edges[(node(i, j), node(i + 1, j))] = (cls, f"{h_names[j % len(h_names)]}路")
    for i in range(nx):
        for j in range(ny - 1):
            cls = ARTERIAL if i % 4 == 1 else LOCAL
            edges[(node(i, j), node(i, j + 1))] = (cls, f"{v_names[i % len(v_names)]}街")
    express_nodes: set[int] = set()
    for horizontal, line, a, b, name in express:
        for k in range(a, b):
            key = (
                (node(k, line), node(k + 1, line))
                if horizontal
                else (node(line, k), node(line, k + 1))
            )
            edges[key] = (EXPRESSWAY, name)
            express_nodes.update(key)
    keep: list[tuple[int, int, int, str]] = []
    for (u, v), (cls, name) in edges.items():
        if cls == LOCAL and (u in express_nodes or v in express_nodes):
            continue  # grade separation: local roads do not meet expressways
        if cls == LOCAL and rng.random() < 0.07:
            continue
        keep.append((u, v, cls, name))
    keep = _main_component(len(node_x), keep)
    eu = np.array([k[0] for k in keep])
    ev = np.array([k[1] for k in keep])
    ecls = np.array([k[2] for k in keep], dtype=np.int8)
    elen = np.hypot(node_x[ev] - node_x[eu], node_y[ev] - node_y[eu])
    adj: list[list[tuple[int, int]]] = [[] for _ in range(len(node_x))]
    for e, (u, v) in enumerate(zip(eu.tolist(), ev.tolist(), strict=True)):
        adj[u].append((v, e))
        adj[v].append((u, e))
    return Network(node_x, node_y, eu, ev, ecls, elen, [k[3] for k in keep], adj)


def _main_component(
    n: int, edges: list[tuple[int, int, int, str]]
) -> list[tuple[int, int, int, str]]:
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for u, v, _, _ in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[ru] = rv
    roots = [find(u) for u, _, _, _ in edges]
    counts: dict[int, int] = {}
    for r in roots:
        counts[r] = counts.get(r, 0) + 1
    main = max(counts, key=lambda r: (counts[r], -r))
    return [e for e, r in zip(edges, roots, strict=True) if r == main]
