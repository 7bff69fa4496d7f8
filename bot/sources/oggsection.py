"""Cut a time window out of an Ogg (Opus/Vorbis) file fetched with two HTTP Range requests.

An Ogg stream is a chain of self-delimiting, CRC-protected pages. The header pages at the start
(granule position 0) tell the decoder the codec; any later run of whole pages decodes on its
own. So a section is: the header pages from the file's first bytes + the pages found in the
byte range that covers the wanted time, renumbered and re-stamped so the result is a valid,
short Ogg file that any decoder opens.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from bot.sources.spans import StreamTimesLie

CAPTURE = b"OggS"
HEADER_FMT = "<4sBBqIIIB"  # capture, version, flags, granule, serial, sequence, crc, segments
HEADER_LEN = struct.calcsize(HEADER_FMT)  # 27
MAX_PAGE_BYTES = HEADER_LEN + 255 + 255 * 255  # 255 lacing values of 255
FLAG_CONTINUED = 0x01
FLAG_BOS = 0x02
FLAG_EOS = 0x04
NO_GRANULE = -1  # a page on which no packet ends
OPUS_RATE = 48_000  # Opus granule positions always count 48 kHz samples


# Ogg's CRC-32 is the MSB-first ("non-reflected") one: polynomial 0x04C11DB7, initial value 0, no
# final XOR. zlib.crc32 computes the same polynomial LSB-first, in C. Reversing the bits of every
# input byte and of the 32-bit result turns one into the other, and undoing zlib's initial and
# final inversion leaves Ogg's: a per-byte Python loop cost ~60 ms per 184 kB, this ~0.3 ms.
BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
ZLIB_INVERT = 0xFFFFFFFF


def _reverse32(value: int) -> int:
    return int.from_bytes(value.to_bytes(4, "little").translate(BIT_REVERSED), "big")


def ogg_crc(data: bytes) -> int:
    reflected = zlib.crc32(data.translate(BIT_REVERSED), ZLIB_INVERT) ^ ZLIB_INVERT
    return _reverse32(reflected)


@dataclass(frozen=True)
class Page:
    flags: int
    granule: int
    serial: int
    sequence: int
    segments: bytes  # the lacing table
    body: bytes

    @property
    def size(self) -> int:
        return HEADER_LEN + len(self.segments) + len(self.body)

    def to_bytes(self) -> bytes:
        head = struct.pack(HEADER_FMT, CAPTURE, 0, self.flags, self.granule, self.serial,
                           self.sequence, 0, len(self.segments))
        raw = head + self.segments + self.body
        crc = ogg_crc(raw)
        return raw[:22] + struct.pack("<I", crc) + raw[26:]


def _unchecked_page(buf: bytes, at: int) -> tuple[Page, int] | None:
    """(the page starting at `at`, the checksum it states), its checksum not yet checked; None if
    it is cut off or is no page."""
    if len(buf) < at + HEADER_LEN or buf[at:at + 4] != CAPTURE:
        return None
    _, version, flags, granule, serial, seq, crc, nseg = struct.unpack_from(HEADER_FMT, buf, at)
    seg_end = at + HEADER_LEN + nseg
    if version != 0 or len(buf) < seg_end:
        return None
    segments = buf[at + HEADER_LEN:seg_end]
    body_end = seg_end + sum(segments)
    if len(buf) < body_end:
        return None
    return Page(flags, granule, serial, seq, segments, buf[seg_end:body_end]), crc


def _checksum_holds(buf: bytes, at: int, page: Page, crc: int) -> bool:
    raw = bytearray(buf[at:at + page.size])
    raw[22:26] = b"\0\0\0\0"
    return ogg_crc(bytes(raw)) == crc


def parse_page(buf: bytes, at: int) -> Page | None:
    """The page starting at `at`, or None if it is cut off or its CRC is wrong."""
    found = _unchecked_page(buf, at)
    return found[0] if found is not None and _checksum_holds(buf, at, *found) else None


def pages_in(buf: bytes) -> list[Page]:
    """Every whole, valid page in `buf`, resynchronising on the capture pattern after junk.

    A capture pattern in junk may declare a page of up to MAX_PAGE_BYTES, which overlaps the next
    ones: checksumming each cost time in proportion to the matches times their pages (283-byte
    'OggS' units declaring 64 kB pages: 0.96 s for 4 MB). The bytes checksummed in pages that fail
    are bounded by the buffer's size (a valid file fails none: its pages follow one another); past
    that, `buf` is junk, and the pages found before are all there is."""
    pages, at = [], buf.find(CAPTURE)
    failed_budget = max(len(buf), MAX_PAGE_BYTES)
    while at != -1:
        found = _unchecked_page(buf, at)
        if found is not None and found[0].size > failed_budget:
            break  # might fail too, over the budget
        if found is None or not _checksum_holds(buf, at, *found):
            failed_budget -= found[0].size if found is not None else 0
            at = buf.find(CAPTURE, at + 1)
            continue
        page = found[0]
        pages.append(page)
        at += page.size
        if buf[at:at + 4] != CAPTURE:
            at = buf.find(CAPTURE, at)
    return pages


def drop_continuation(page: Page) -> Page | None:
    """`page` without the tail of a packet begun on an earlier page (we do not have its head)."""
    if not page.flags & FLAG_CONTINUED:
        return page
    skip_bytes = 0
    for i, lace in enumerate(page.segments):
        skip_bytes += lace
        if lace < 255:  # the continued packet ends here
            rest = page.segments[i + 1:]
            if not rest:
                return None
            return replace(page, flags=page.flags & ~FLAG_CONTINUED, segments=rest, body=page.body[skip_bytes:])
    return None  # the whole page is the middle of one long packet


def header_pages(prefix: bytes) -> list[Page] | None:
    """The leading pages that carry codec headers (granule 0), or None if `prefix` is not a
    single-stream Ogg file or the headers do not fit in it."""
    if not prefix.startswith(CAPTURE):
        return None
    pages = pages_in(prefix)
    headers = []
    for page in pages:
        if page.serial != pages[0].serial:
            return None  # multiplexed streams: not worth cutting by hand
        if page.granule not in (0, NO_GRANULE) or (page.granule == NO_GRANULE and not headers):
            break
        headers.append(page)
    done = len(headers) < len(pages)  # an audio page follows, so the headers are complete
    return headers if headers and done else None


def sample_rate(headers: list[Page]) -> int | None:
    """The rate granule positions count; None if unknown (another codec, or a Vorbis header that
    states 0)."""
    first = headers[0].body
    if first.startswith(b"OpusHead"):
        return OPUS_RATE
    if first.startswith(b"\x01vorbis") and len(first) >= 16:
        return struct.unpack_from("<I", first, 12)[0] or None
    return None


# An Opus packet's frames last, by its TOC byte's configuration (RFC 6716, 3.1), at 48 kHz: SILK's
# 10/20/40/60 ms (configurations 0-11), Hybrid's 10/20 ms (12-15), CELT's 2.5/5/10/20 ms (16-31).
OPUS_FRAME_SAMPLES = tuple([480, 960, 1920, 2880] * 3 + [480, 960] * 2 + [120, 240, 480, 960] * 4)
# What a section's granule positions may say beyond what its Opus packets play: the packet whose
# tail the first page carried (dropped), rounding; past it, the granule positions are not the stream's.
GRANULE_SLACK_S = 0.5


def opus_packet_samples(start: bytes) -> int | None:
    """The 48 kHz samples an Opus packet plays, from its first bytes (its TOC byte, and its frame
    count where the TOC says it is given); 0 for an empty packet, None if it is cut too short."""
    if not start:
        return 0
    toc = start[0]
    code = toc & 0b11
    if code == 3:
        if len(start) < 2:
            return None
        frames = start[1] & 0x3F
    else:
        frames = 1 if code == 0 else 2
    return frames * OPUS_FRAME_SAMPLES[toc >> 3]


def packet_starts(pages: list[Page]) -> Iterator[bytes]:
    """The first two bytes (fewer if it is shorter) of each packet that ends on `pages` (the first
    page holding no tail of an earlier packet)."""
    start = None  # the first two bytes of the packet under way, once it has begun
    for page in pages:
        at = 0
        for lace in page.segments:
            if start is None or len(start) < 2:
                start = (start or b"") + page.body[at:at + min(lace, 2 - len(start or b""))]
            at += lace
            if lace < 255:
                yield start
                start = None


def opus_samples(pages: list[Page]) -> int | None:
    """The 48 kHz samples the packets that end on `pages` play (the first page holding no tail of
    an earlier packet); None if a packet's first bytes do not say."""
    total = 0
    for start in packet_starts(pages):
        samples = opus_packet_samples(start)
        if samples is None:
            return None
        total += samples
    return total


def header_packets(headers: list[Page], count: int) -> list[bytes] | None:
    """The first `count` packets the header pages carry; None if they do not hold that many."""
    packets, parts = [], []  # parts: the packet under way's (a comment with cover art has hundreds)
    for page in headers:
        at = 0
        for lace in page.segments:
            parts.append(page.body[at:at + lace])
            at += lace
            if lace < 255:
                packets.append(b"".join(parts))
                parts = []
                if len(packets) == count:
                    return packets
    return None


@dataclass(frozen=True)
class VorbisBlocks:
    """What a Vorbis audio packet's first byte says of the samples it plays: the two block sizes
    (identification header) and each mode's block flag (the end of the setup header)."""
    sizes: tuple[int, int]
    long_modes: tuple[bool, ...]

    @property
    def mode_bits(self) -> int:
        return (len(self.long_modes) - 1).bit_length()  # the spec's ilog(modes - 1)


# A Vorbis mode, as the setup header packs it (LSB first): block flag, window type (0), transform
# type (0), mapping number (under 64).
VORBIS_MODE_BITS = 1 + 16 + 16 + 8
VORBIS_MAX_MODES = 64
# The setup header's last bytes hold its modes, their count and its framing bit.
VORBIS_MODES_BYTES = (6 + VORBIS_MAX_MODES * VORBIS_MODE_BITS + 1) // 8 + 2


def vorbis_blocks(headers: list[Page]) -> VorbisBlocks | None:
    """The block sizes and modes of a Vorbis stream from its header pages; None for another codec
    or a set-up that does not say (see `vorbis_set_up`)."""
    packets = header_packets(headers, 3)
    if packets is None:
        return None
    ident, _, setup = packets
    return vorbis_set_up(ident, setup)


def vorbis_set_up(ident: bytes, setup: bytes) -> VorbisBlocks | None:
    """The block sizes and modes of a Vorbis stream from its identification and setup headers
    (an Ogg's first and third packets, a WebM track's CodecPrivate's); None if they are not
    Vorbis's or do not say. The modes end the setup header, after codebooks, floors, residues and
    mappings of no fixed size: they are read backwards from its framing bit, as FFmpeg's Vorbis
    parser does (the longest run of valid modes that a mode count before it names)."""
    if not (ident.startswith(b"\x01vorbis") and len(ident) >= 30 and setup.startswith(b"\x05vorbis")):
        return None
    small, large = 1 << (ident[28] & 0x0F), 1 << (ident[28] >> 4)
    if not 64 <= small <= large <= 8192:
        return None
    bits = int.from_bytes(setup[7:][-VORBIS_MODES_BYTES:], "little")  # after its type and "vorbis"
    framing = bits.bit_length() - 1  # the setup's last bit set

    def field(at: int, width: int) -> int:
        return bits >> at & ((1 << width) - 1)

    modes, found = [], None  # the block flags, last mode first
    end = framing
    while len(modes) < VORBIS_MAX_MODES and end - VORBIS_MODE_BITS - 6 >= 0:
        at = end - VORBIS_MODE_BITS
        if field(at + 1, 16) or field(at + 17, 16) or field(at + 33, 8) >= VORBIS_MAX_MODES:
            break
        modes.append(bool(field(at, 1)))
        end = at
        if field(end - 6, 6) + 1 == len(modes):
            found = len(modes)
    if found is None:
        return None
    return VorbisBlocks((small, large), tuple(reversed(modes[:found])))


def vorbis_samples(blocks: VorbisBlocks, pages: list[Page]) -> int | None:
    """The samples the Vorbis audio packets that end on `pages` play (the first page holding no
    tail of an earlier packet): each its block's last half and the block before's first half,
    (previous + current block size) / 4. A long block's packet says the size of the block before
    it; the first packet's, if short, is taken for short. None if a packet is not audio or names
    no mode the set-up has."""
    return vorbis_packets_samples(blocks, packet_starts(pages))


def vorbis_packets_samples(blocks: VorbisBlocks, starts: Iterable[bytes]) -> int | None:
    """What `vorbis_samples` counts, from the first bytes of each packet in turn."""
    total, previous = 0, None
    for start in starts:
        if not start:
            continue  # an empty packet is skipped by the decoder
        mode = start[0] >> 1 & ((1 << blocks.mode_bits) - 1)
        if start[0] & 1 or mode >= len(blocks.long_modes):
            return None
        long = blocks.long_modes[mode]
        if long:
            previous = blocks.sizes[start[0] >> (1 + blocks.mode_bits) & 1]
        current = blocks.sizes[long]
        total += ((previous or blocks.sizes[0]) + current) // 4
        previous = current
    return total


def samples_played(headers: list[Page], pages: list[Page]) -> int | None:
    """The samples, at the rate the granule positions count, that the packets ending on `pages`
    play by their own bytes; None where the codec or its packets do not say."""
    if headers[0].body.startswith(b"OpusHead"):
        return opus_samples(pages)
    blocks = vorbis_blocks(headers)
    return vorbis_samples(blocks, pages) if blocks else None


def stated_seconds(headers: list[Page], tail: bytes) -> float | None:
    """The stream's length from the granule position of its last page in `tail` (the file's last
    bytes); an Opus stream's pre-skip is not sound. None if no page of the stream ends there."""
    rate = sample_rate(headers)
    serial = headers[0].serial
    granules = [p.granule for p in pages_in(tail) if p.serial == serial and p.granule > 0]
    if rate is None or not granules:
        return None
    first = headers[0].body
    pre_skip = struct.unpack_from("<H", first, 10)[0] if first.startswith(b"OpusHead") and len(first) >= 12 else 0
    return max(granules[-1] - pre_skip, 0) / rate or None


def splice_section(prefix: bytes, middle: bytes,
                   max_seconds: float | None = None) -> tuple[bytes, float | None, float | None] | None:
    """(a playable Ogg file, where it starts and ends in the song in seconds, if the codec's rate
    is known): the header pages of `prefix` + the whole pages found in `middle`, trimmed to
    `max_seconds`. None if this cannot be done safely (caller falls back); StreamTimesLie if the
    granule positions are not what the packets play. An Opus stream's pre-skip is the same in the
    section and cancels out."""
    headers = header_pages(prefix)
    if headers is None:
        return None
    serial = headers[0].serial
    audio = [p for p in pages_in(middle) if p.serial == serial and p.granule > 0]
    # The first page only marks where the section's timeline starts: its packets may be cut.
    if len(audio) < 2:
        return None
    start_granule = audio[0].granule
    rate = sample_rate(headers)
    limit = None if max_seconds is None or rate is None else start_granule + int(max_seconds * rate)
    kept = []
    for page in audio[1:]:
        if page.granule <= start_granule:
            return None  # out of order or a chained stream: give up
        if not kept:
            page = drop_continuation(page)
            if page is None:
                continue
        kept.append(page)
        if limit is not None and page.granule >= limit:
            break
    out = bytearray()
    sequence = 0
    for page in headers:
        out += replace(page, sequence=sequence).to_bytes()
        sequence += 1
    for i, page in enumerate(kept):
        flags = page.flags & ~FLAG_BOS
        if i == len(kept) - 1:
            flags |= FLAG_EOS
        out += replace(page, flags=flags, granule=page.granule - start_granule, sequence=sequence).to_bytes()
        sequence += 1
    if not kept:
        return None
    if rate is not None:
        # The granule positions say where the section lies and how long it lasts; its packets
        # (an Opus packet's TOC byte, a Vorbis packet's mode), how long it plays: granule
        # positions three times an Opus stream's had a section said to last 27 s while it played
        # 9 s, a Vorbis one's said to lie at 350-378 s of a 240 s song.
        plays = samples_played(headers, kept)
        stated = kept[-1].granule - start_granule
        if plays is None and headers[0].body.startswith(b"OpusHead"):
            return None
        if plays is not None and abs(stated - plays) > GRANULE_SLACK_S * rate:
            raise StreamTimesLie
    if rate is None:
        return bytes(out), None, None
    return bytes(out), start_granule / rate, kept[-1].granule / rate
