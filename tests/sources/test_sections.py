"""The container surgery behind section downloads: valid pieces in, a playable file out, and a
plain "can't" (None, so the fetcher falls back to yt-dlp) for anything unexpected."""
from __future__ import annotations

import time

import pytest

from bot.sources import oggsection as ogg
from bot.sources import webmsection as webm


@pytest.fixture(scope="module")
def files(audio_root):
    return {ext: (audio_root / f"long.{ext}").read_bytes() for ext in ("ogg", "webm")}


def middle_of(data: bytes) -> bytes:
    n = len(data)
    return data[int(n * 0.45):int(n * 0.6)]


def test_ogg_pages_parse_and_round_trip(files):
    data = files["ogg"]
    pages = ogg.pages_in(data[:200_000])
    assert len(pages) > 10
    assert b"".join(p.to_bytes() for p in pages) == data[:sum(p.size for p in pages)]  # CRCs recomputed equal


def bitwise_ogg_crc(data: bytes) -> int:
    """The Ogg spec's CRC-32 the slow, obvious way (MSB first, polynomial 0x04C11DB7, init 0):
    the reference the zlib-based one must match bit for bit."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def test_ogg_crc_matches_the_spec_on_real_pages_and_odd_lengths(files):
    data = files["ogg"]
    pages = ogg.pages_in(data[:60_000])
    at = 0
    for page in pages[:8]:
        raw = bytearray(data[at:at + page.size])
        stored = int.from_bytes(raw[22:26], "little")
        raw[22:26] = bytes(4)
        assert ogg.ogg_crc(bytes(raw)) == bitwise_ogg_crc(bytes(raw)) == stored
        at += page.size
    for length in (0, 1, 3, 4, 5, 255, 4097):
        chunk = data[1000:1000 + length]
        assert ogg.ogg_crc(chunk) == bitwise_ogg_crc(chunk)
    assert ogg.ogg_crc(b"\xff" * 64) == bitwise_ogg_crc(b"\xff" * 64)


def test_ogg_splice_renumbers_and_restamps(files):
    data = files["ogg"]
    out, start, end = ogg.splice_section(data[:16384], middle_of(data), max_seconds=30)
    pages = ogg.pages_in(out)
    assert [p.sequence for p in pages] == list(range(len(pages)))
    audio = [p for p in pages if p.granule > 0]
    assert audio[-1].granule == pytest.approx(30 * ogg.OPUS_RATE, rel=0.05)
    assert audio[-1].flags & ogg.FLAG_EOS and not audio[0].flags & ogg.FLAG_CONTINUED
    assert end - start == pytest.approx(audio[-1].granule / ogg.OPUS_RATE)  # where it is in the song


def test_webm_splice_keeps_setup_and_whole_clusters(files):
    data = files["webm"]
    out, start, end = webm.splice_section(data[:16384], middle_of(data), max_seconds=30)
    header = webm.parse_header(data[:16384])
    assert out.startswith(header.data)
    clusters = webm.clusters_in(out)
    assert clusters and (clusters[-1][0] - clusters[0][0]) * header.timestamp_scale_ns / 1e9 < 30
    assert start == clusters[0][0] * header.timestamp_scale_ns / 1e9 and 29 <= end - start < 35
    segment = webm.read_element(out, webm.read_element(out, 0).end)
    assert segment.id == webm.SEGMENT_ID and segment.size is None  # read to the end of the file


@pytest.mark.parametrize("total", [2, 7, 11, 128, 129, 4000])
def test_void_elements_have_the_exact_length(total):
    element = webm.read_element(webm.void_element(total), 0)
    assert element.id == webm.VOID_ID and element.end == total


@pytest.mark.parametrize("length", range(1, 9))
def test_unknown_size_reads_back_as_unknown(length):
    assert webm.read_vint(webm.unknown_size(length), 0, keep_marker=False) == ((1 << (7 * length)) - 1, length)


def test_unexpected_input_gives_none_not_garbage(files):
    ogg_data, webm_data = files["ogg"], files["webm"]
    assert ogg.splice_section(b"not an ogg file", middle_of(ogg_data)) is None
    assert ogg.splice_section(ogg_data[:100], middle_of(ogg_data)) is None  # headers cut off
    assert ogg.splice_section(ogg_data[:16384], b"\0" * 5000) is None  # no pages in the middle
    assert webm.splice_section(b"RIFF....WAVE", middle_of(webm_data)) is None
    assert webm.splice_section(webm_data[:40], middle_of(webm_data)) is None
    assert webm.splice_section(webm_data[:16384], b"\x1f\x43\xb6\x75 broken") is None


def test_ogg_and_webm_state_their_length(files, long_duration):
    ogg_data, webm_data = files["ogg"], files["webm"]
    headers = ogg.header_pages(ogg_data[:16384])
    assert ogg.stated_seconds(headers, ogg_data[-65536:]) == pytest.approx(long_duration, abs=0.01)
    assert ogg.stated_seconds(headers, b"\0" * 1000) is None  # no page of the stream there
    assert webm.parse_header(webm_data[:16384]).seconds == pytest.approx(long_duration, abs=0.01)
    assert webm.read_element(webm.parse_header(webm_data[:16384]).data, 0).id == webm.EBML_ID


def webm_with_info(info_children: bytes) -> bytes:
    """An empty EBML header, a Segment of unknown size, an Info element of `info_children`, and a
    Cluster whose first child is its timestamp (0)."""
    info = bytes.fromhex("1549a966") + bytes([0x80 | len(info_children)]) + info_children
    cluster = bytes.fromhex("1f43b675") + b"\x83" + bytes.fromhex("e78100")
    return bytes.fromhex("1a45dfa3") + b"\x80" + bytes.fromhex("18538067") + b"\xff" + info + cluster


def test_an_info_child_that_claims_more_than_its_info_holds_costs_no_memory():
    """Info's Duration, blanked for the section, was blanked to the length its 12-byte header
    stated, beyond Info and the bytes fetched: 2^26 claimed held 64 MB, 2^56 raised OverflowError
    ('something went wrong'). Now such a header is not cut here (None: yt-dlp's turn)."""
    import tracemalloc

    assert webm.parse_header(webm_with_info(bytes.fromhex("4489") + b"\x88" + bytes(8))) is not None
    for claimed in (1 << 26, (1 << 56) - 2):
        duration = bytes.fromhex("4489") + b"\x01" + claimed.to_bytes(7, "big") + bytes(8)
        tracemalloc.start()
        try:
            assert webm.parse_header(webm_with_info(duration)) is None
            assert tracemalloc.get_traced_memory()[1] < 1 << 20
        finally:
            tracemalloc.stop()


def test_a_timestamp_scale_longer_than_an_ebml_integer_is_not_taken():
    """A TimestampScale of 100 bytes (an EBML integer has 8 at most) was a number too large for a
    float, and splice_section raised OverflowError ('something went wrong')."""
    data = webm_with_info(bytes.fromhex("2ad7b1") + bytes([0x80 | 100]) + b"\xff" * 100)
    cluster = bytes.fromhex("1f43b675") + b"\x83" + bytes.fromhex("e78100")
    assert webm.parse_header(data) is None
    assert webm.splice_section(data, cluster * 3, max_seconds=30) is None
    eight = webm_with_info(bytes.fromhex("2ad7b1") + b"\x88" + (10**18).to_bytes(8, "big"))
    assert webm.parse_header(eight).timestamp_scale_ns == 10**18


def test_a_vorbis_header_that_states_no_sample_rate_raises_nothing():
    """A Vorbis identification header with a sample rate of 0: the length (granule / rate) and the
    section's times divided by it, ZeroDivisionError ('something went wrong')."""
    ident = b"\x01vorbis" + bytes(4) + b"\x02" + bytes(4) + bytes(17)  # version, channels, rate 0, ...
    pages = [ogg.Page(ogg.FLAG_BOS, 0, 7, 0, bytes([len(ident)]), ident)]
    pages += [ogg.Page(0, 1000 * n, 7, n, b"\x04", b"\0" * 4) for n in range(1, 5)]
    raw = [page.to_bytes() for page in pages]
    head, middle = b"".join(raw[:2]), b"".join(raw[1:])
    headers = ogg.header_pages(head)
    assert ogg.stated_seconds(headers, middle) is None
    assert ogg.splice_section(head, middle, max_seconds=30)[1:] == (None, None)  # times unknown
    assert ogg.sample_rate(headers) is None


def test_junk_capture_patterns_cost_little_and_hide_no_page_before_them(files):
    """A middle made of 283-byte 'OggS' units (a header, a lacing table of 255s, no body) declares
    a 64 kB page at every match: each was checksummed, 0.96 s for 4 MB (~7 s for the 25 MB a
    fetch may take). The bytes checksummed in pages that fail are bounded by the buffer's size:
    the same buffer takes ~10 ms, and the real pages before the junk are all found."""
    unit = b"OggS" + bytes(22) + b"\xff" + b"\xff" * 255
    junk = unit * (4 * 1024 * 1024 // len(unit))
    real = ogg.pages_in(files["ogg"][:200_000])
    head = files["ogg"][:sum(p.size for p in real)]
    started = time.process_time()
    assert ogg.pages_in(junk) == []
    assert ogg.pages_in(head + junk) == real
    assert time.process_time() - started < 0.2
