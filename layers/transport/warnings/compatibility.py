"""Which hazmat classes may not follow one another in a tank unwashed, nor ride together: the
data the ``mixed_loading`` model (``mixed_loading.py``) judges with. One home: an operator
replaces :data:`INCOMPATIBLE` (and only it) with the table of their regulator.

SOURCE — SAMPLE. Classes and divisions are GB 6944-2012's (``vocab.HAZMAT_CLASSES``). The
binding mixed-loading prohibitions are JT/T 617.7-2018 (危险货物道路运输规则 第7部分, its
mixed-loading clause, which follows ADR 7.5.2.1 by danger label) and, for what may not share a
store, GB 15603's 禁忌物配存表. We could not obtain the official tables' text for this build,
so the pairs below are a small SAMPLE chosen on well-known reactions of the residues a tank
keeps (docs/transport.md §4, ``mixed_loading``), not a transcription of any standard:

* explosives (1) with any other class (ADR 7.5.2.1 keeps labels 1 apart from all others);
* oxidisers and organic peroxides (5.1, 5.2) with fuels: flammable gases (2.1), flammable
  liquids (3), flammable solids and self-heating substances (4.1, 4.2);
* substances dangerous when wet (4.3) with corrosives (8, mostly aqueous acids and alkalis);
* organic peroxides (5.2) with corrosives (8): acids and alkalis decompose them;
* toxic substances (6.1, e.g. cyanides) with corrosives (8): acids free toxic gases.

Matching: a pair written with a bare class (``"5"``) covers its divisions; a waybill that
names only a bare class (``"4"``) is treated as possibly any of its divisions — a tank with an
unknown division gets no benefit of the doubt.
"""

from __future__ import annotations

from typing import Final

#: Unordered pairs of classes or divisions that may not follow one another in one tank without
#: a wash, nor be loaded together. SAMPLE (see the module's doc).
INCOMPATIBLE: Final[frozenset[frozenset[str]]] = frozenset(
    frozenset(pair)
    for pair in (
        *(("1", other) for other in ("2", "3", "4", "5", "6", "7", "8", "9")),
        ("2.1", "5.1"),
        ("2.1", "5.2"),
        ("3", "5.1"),
        ("3", "5.2"),
        ("4.1", "5.1"),
        ("4.1", "5.2"),
        ("4.2", "5.1"),
        ("4.2", "5.2"),
        ("4.3", "8"),
        ("5.2", "8"),
        ("6.1", "8"),
    )
)


def _covers(written: str, named: str) -> bool:
    """Whether the table's ``written`` class or division may be the waybill's ``named`` one:
    equal, ``named`` a division of ``written``, or ``named`` a bare class holding it."""
    return written == named or named.startswith(written + ".") or written.startswith(named + ".")


def incompatible(a: str, b: str, table: frozenset[frozenset[str]] = INCOMPATIBLE) -> bool:
    """Whether class/division ``a`` and ``b`` may not follow one another or ride together."""
    if a == b:
        return False
    for pair in table:
        x, y = sorted(pair)
        if (_covers(x, a) and _covers(y, b)) or (_covers(x, b) and _covers(y, a)):
            return True
    return False
