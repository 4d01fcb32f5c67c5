"""Identifiers and names: unified social credit codes with real check characters, plates, names.

Credit codes follow GB 32100-2015 (registration authority + type, the 6-digit division code of
the district, a GB 11714 organisation code with its own check digit, and a mod-31 check
character), so imports and validators written later can check them for real.
"""

from __future__ import annotations

import numpy as np

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def org_code(body: int) -> str:
    """GB 11714 organisation code: 8 digits plus a check character (0-9 or X)."""
    digits = f"{body:08d}"
    c = 11 - sum(int(d) * w for d, w in zip(digits, _ORG_WEIGHTS, strict=True)) % 11
    return digits + ("X" if c == 10 else "0" if c == 11 else str(c))


def credit_code(prefix: str, division: str, body: int) -> str:
    first17 = prefix + division + org_code(body)
    total = sum(
        CREDIT_ALPHABET.index(ch) * w for ch, w in zip(first17, _CREDIT_WEIGHTS, strict=True)
    )
    return first17 + CREDIT_ALPHABET[(31 - total % 31) % 31]


def unique_ints(rng: np.random.Generator, n: int, high: int) -> np.ndarray:
    """``n`` distinct integers below ``high``, in draw order (deterministic for the generator)."""
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        for v in rng.integers(0, high, size=2 * (n - len(out)) + 8).tolist():
            if v not in seen:
                seen.add(v)
                out.append(v)
                if len(out) == n:
                    break
    return np.array(out, dtype=np.int64)


_BRANDS = (
    "华泰",
    "金海",
    "恒信",
    "东方",
    "永安",
    "宏达",
    "海天",
    "明辉",
    "振华",
    "兴业",
    "瑞丰",
    "中盛",
    "远航",
    "万华",
    "镇洋",
    "逸盛",
    "台塑",
    "甬兴",
    "北港",
    "三江",
    "四明",
    "宁强",
    "富德",
    "禾元",
    "利万",
    "金发",
    "龙欣",
    "宏润",
    "鼎盛",
    "嘉汇",
    "昌和",
    "天安",
    "博汇",
    "康泰",
    "立华",
    "泰和",
    "长丰",
    "凯越",
    "海越",
    "福基",
    "信远",
    "和鑫",
    "盛达",
    "恒河",
    "大榭",
    "新桥",
    "舜宇",
    "慈航",
    "姚江",
    "奉川",
)

_HAZMAT_TRADE = {
    "production": ("化工", "石化", "新材料", "化学", "精细化工"),
    "storage": ("石化储运", "化工仓储", "能源储运", "液化气储配"),
    "trading": ("化工贸易", "石化贸易", "能源贸易"),
    "use": ("涂料", "制药", "电子材料", "塑胶"),
    "transport": ("危险品运输", "化工物流", "危货运输"),
    "disposal": ("环保科技", "固废处置", "环境服务"),
}
_OTHER_KIND = {
    "school": ("小学", "中学", "实验学校", "职业技术学校"),
    "hospital": ("人民医院", "中医院", "妇幼保健院", "第二医院"),
    "laboratory": ("检测技术有限公司实验室", "质检中心实验室"),
    "research": ("化工研究院", "材料研究所", "工业技术研究院"),
    "other_user": ("电镀有限公司", "纺织印染有限公司", "机械制造有限公司", "食品有限公司"),
}


def enterprise_name(rng: np.random.Generator, category: str, district_name: str) -> str:
    brand = _BRANDS[int(rng.integers(len(_BRANDS)))]
    if category in _HAZMAT_TRADE:
        trade = _HAZMAT_TRADE[category][int(rng.integers(len(_HAZMAT_TRADE[category])))]
        suffix = "股份有限公司" if rng.random() < 0.2 else "有限公司"
        return f"宁波{brand}{trade}{suffix}"
    kinds = _OTHER_KIND[category]
    kind = kinds[int(rng.integers(len(kinds)))]
    if category in ("school", "hospital"):
        return f"宁波市{district_name}{brand}{kind}"
    return f"宁波{brand}{kind}"


PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def plates(rng: np.random.Generator, n: int) -> list[str]:
    """Unique Ningbo (浙B) plates like ``浙B·D1234``."""
    codes = unique_ints(rng, n, len(PLATE_LETTERS) * 10_000)
    return [f"浙B·{PLATE_LETTERS[c // 10_000]}{c % 10_000:04d}" for c in codes.tolist()]


def carrier_names(rng: np.random.Generator, n: int) -> list[str]:
    kinds = ("危险品运输有限公司", "化工物流有限公司", "危险货物运输有限公司", "石化运输有限公司")
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(out) < n:
        brand = _BRANDS[int(rng.integers(len(_BRANDS)))]
        second = _BRANDS[int(rng.integers(len(_BRANDS)))][0]
        name = f"宁波{brand}{second}{kinds[int(rng.integers(len(kinds)))]}"
        if name not in seen:
            seen.add(name)
            out.append(name)
        i += 1
        if i > 50 * n:
            out.append(f"宁波第{len(out) + 1}危险品运输有限公司")
    return out
