"""CSV files read as ``pandas.read_csv(path)`` + ``astype(str)`` reads them, without pandas.

The expected values below were taken from pandas 3.1 (and agree with 2.3 except where
noted in scoring/pandas_csv.py). Where pandas is installed, the last test compares the two
directly on a set of awkward files; the suite never needs it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fleetbench.scoring.pandas_csv import NAN, CsvReadError, convert, parse, read

U64 = "18446744073709551615"  # the largest uint64
BIG = "99999999999999999999"  # beyond uint64


@pytest.mark.parametrize(
    ("cells", "values"),
    [
        # integers: str(int); a missing value makes the column float
        (["1", "2"], ["1", "2"]), ([" 1 ", "+2", "007", "-0"], ["1", "2", "7", "0"]),
        (["\t-3\t", "\x0c1"], ["-3", "1"]), (["1", ""], ["1.0", NAN]),
        (["1", None], ["1.0", NAN]),
        # floats: str(float)
        (["1.5", "2"], ["1.5", "2.0"]),
        (["1e5", ".5", "5.", "-0.0"], ["100000.0", "0.5", "5.0", "-0.0"]),
        (["1e16", "0.000001"], ["1e+16", "1e-06"]),
        (["inf", "-Infinity", "NA"], ["inf", "-inf", NAN]),
        (["1e309"], ["inf"]), (["123456789.123456789"], ["123456789.12345679"]),
        # booleans: any case of true/false, nothing around it
        (["True", "false", "TRUE", "fAlSe"], ["True", "False", "True", "False"]),
        (["true", ""], ["True", NAN]),
        # text: as written, missing values as "nan"
        (["True", "1"], ["True", "1"]), (["yes", "no"], ["yes", "no"]),
        ([" inf", "1e", "1_000", "1,000", "٣"], [" inf", "1e", "1_000", "1,000", "٣"]),
        (["x", "NA", "", None, "None", "  "], ["x", NAN, NAN, NAN, NAN, "  "]),
        (["NAN", "+nan", "nan "], ["NAN", "+nan", "nan "]),  # not in the list: text
        # beyond int64: uint64, Python ints, or kept as written with no NA filtering at all
        ([U64], [U64]), (["9223372036854775808"], ["9223372036854775808"]),
        ([BIG, "NA"], [BIG, NAN]), (["1", BIG], ["1", BIG]),
        (["-9223372036854775809"], ["-9223372036854775809"]),
        (["NA", U64], ["NA", U64]), (["1", "", U64], ["1", "", U64]), ([U64, "-1"], [U64, "-1"]),
        ([U64, "1.5"], ["1.8446744073709552e+19", "1.5"]), (["1.5", BIG], ["1.5", "1e+20"]),
        ([BIG, "x", "NA"], [BIG, "x", "NA"]), (["x", BIG, "NA"], ["x", BIG, NAN]),
        ([BIG, "1_0", None], [BIG, "10", NAN]), ([BIG, "٣"], [BIG, "٣"]),
        # all missing: float
        (["", "NA"], [NAN, NAN]),
    ],
)  # fmt: skip
def test_column_types(cells: list[str | None], values: list[str]) -> None:
    assert convert(cells).values == values


def test_na_flags() -> None:
    assert convert(["x", "NA", "", None, "nan", "na"]).na == [False, True, True, True, True, False]
    assert convert(["NA", U64]).na == [False, False]  # kept as written: no missing value


def test_parse_skips_blank_lines_keeps_quoted_empty_cells() -> None:
    table = parse('\n  \nh1,h2\n1,x\n \t \n""\n\n2,"a\nb"\r\n3\n')
    assert table.header == ["h1", "h2"]
    assert table.lines == [4, 6, 8, 10]
    assert table.raw == [["1", "x"], ["", None], ["2", "a\nb"], ["3", None]]
    assert table.column("h1").values == ["1.0", NAN, "2.0", "3.0"]
    assert table.column("h2").values == ["x", NAN, "a\nb", NAN]


def test_parse_header_as_written_first_duplicate_wins() -> None:
    table = parse(" a ,a,a\n1,2,3\n")
    assert table.header == [" a ", "a", "a"] and table.column("a").values == ["2"]
    with pytest.raises(KeyError):
        table.column("b")


def test_parse_quotes_like_pandas() -> None:
    table = parse('a,b\nq"b"c,"x"y\n"x" ,"say ""hi"""\n')
    assert table.raw == [['q"b"c', "xy"], ["x ", 'say "hi"']]


def test_first_row_longer_than_header_becomes_the_index() -> None:
    table = parse("a,b\n1,x,z\n2,y\n3\n")
    assert table.index_fields == 1
    assert table.raw == [["x", "z"], ["y", None], [None, None]]
    with pytest.raises(CsvReadError, match="line 3: 4 fields, expected at most 3"):
        parse("a,b\n1,x,z\n2,y,w,v\n")
    with pytest.raises(CsvReadError, match="line 3: 3 fields, expected at most 2"):
        parse("a,b\n1,x\n2,y,z\n")


def test_unclosed_quote_and_empty_file_are_errors() -> None:
    with pytest.raises(CsvReadError, match="line 3: a quoted field is not closed"):
        parse('a,b\n1,x\n2,"y\n3,z\n')
    with pytest.raises(CsvReadError, match="line 2: a quoted field is not closed"):
        parse('a\n"x""')
    assert parse('a\nq"b\n').raw == [['q"b']]  # a quote inside an unquoted field is text
    with pytest.raises(CsvReadError, match="empty file"):
        parse("\n \n")


def test_read_strips_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfid,v\r\nq1,1\r\n")
    assert read(path).header == ["id", "v"] and read(path).raw == [["q1", "1"]]


AWKWARD = [
    "a,b\n1,x\n,y\n",
    "a,b\n 1 ,x\n2,y\n",
    "a,b\nTrue,x\n,y\n",
    "a,b\n   \n1,x\n",
    "a,b\n,\n1,x\n",
    "a,b\n1,x,z\n2,y\n",
    'a,b\n"",x\n"NA",y\n',
    'a,b\nq"b"c,x\n"q"c,y\n',
    "a,b\ninf,x\n-Infinity,y\n1e5,z\n",
    f"a,b\n{U64},x\n",
    f"a,b\n{BIG},x\nNA,y\n",
    "a,b\n-1,x\n18446744073709551616,y\n",
    "a,a\n1,2\n",
    "a,b\r1,x\r2,y\r",
    "\n\na,b\n1,x\n\n\n2,y\n   ",
    'a,b\n1,"x\r\ny"\n',
    "a,b\nNone,x\n-nan,y\n#N/A N/A,z\n<NA>,w\n",
    "id,answer_value,ref_id\nq1,1,\"['a','b']\"\nq2,N/A,[chung2025]\nq3,,\n",
    "id,v\n01,1.50\n2,7\n3,True\n",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_same_as_pandas_where_installed(text: str) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(io.StringIO(text))
    table = parse(text)
    assert len(frame) == len(table)
    for position, name in enumerate(table.header):
        if table.header.index(name) != position:
            continue  # pandas renamed this duplicate
        expected = [v if isinstance(v, str) else NAN for v in frame[name].astype(str)]
        assert table.column(name).values == expected, name
