"""Regenerate src/suanwang/atlas/data/places.csv from the cpca package (MIT) and pypinyin (MIT).

Run by hand (`pip install cpca pypinyin`, then `python scripts/build_places.py`); the result ships in the
package so that users need neither library. Keeps every prefecture-level unit, the four municipalities and
the province-administered county-level cities, with their coordinates as cpca ships them.
"""

import csv
import importlib.resources
import re
from pathlib import Path

from pypinyin import lazy_pinyin

OUT = Path(__file__).resolve().parents[1] / "src/suanwang/atlas/data/places.csv"
PROVINCES = Path(__file__).resolve().parents[1] / "src/suanwang/atlas/data/provinces.csv"
SUFFIXES = ("特别行政区", "地区", "林区", "市", "盟")


def short_name(name: str) -> str:
    """许昌市 -> 许昌, 延边朝鲜族自治州 -> 延边, 大兴安岭地区 -> 大兴安岭."""
    if name.endswith("自治州"):
        return (
            re.split("(?:蒙古|藏|回|彝|壮|苗|布依|侗|土家|朝鲜|哈尼|傣|白|景颇|傈僳|哈萨克|柯尔克孜|羌)", name)[0]
            or name[:2]
        )
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def main() -> None:
    provinces = {row["adcode"]: row["id"] for row in csv.DictReader(PROVINCES.open(encoding="utf-8"))}
    capitals = {row["id"]: row["capital_zh"] for row in csv.DictReader(PROVINCES.open(encoding="utf-8"))}
    src = importlib.resources.files("cpca") / "resources" / "adcodes.csv"
    seen, rows = set(), []
    for row in csv.DictReader(src.open(encoding="utf-8")):
        code = row["adcode"]
        prov, mid, tail = code[:2], code[2:4], code[4:6]
        if prov not in provinces or code in seen or not row["latitude"] or row["name"] in ("市辖区", "县"):
            continue
        municipality = mid == "00" and tail == "00" and prov in {"11", "12", "31", "50"}
        prefecture = mid not in ("00", "90") and tail == "00" and code[6:] == "000000"
        direct_county = mid == "90" and tail != "00"
        if not (municipality or prefecture or direct_county):
            continue
        seen.add(code)
        short = short_name(row["name"])
        pinyin = "".join(lazy_pinyin(short)).capitalize()
        pid = provinces[prov]
        level = "capital" if short == capitals[pid] else ("county" if direct_county else "prefecture")
        rows.append(
            [
                code[:6],
                row["name"],
                short,
                pinyin,
                pid,
                round(float(row["latitude"]), 6),
                round(float(row["longitude"]), 6),
                level,
            ]
        )
    rows.sort()
    with OUT.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["adcode", "name_zh", "short_zh", "pinyin", "province_id", "lat", "lon", "level"])
        w.writerows(rows)
    print(f"wrote {len(rows)} places to {OUT}")


if __name__ == "__main__":
    main()
