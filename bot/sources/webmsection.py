"""Cut a time window out of a WebM (Matroska) file fetched with two HTTP Range requests.

A WebM file is the EBML header, then a Segment holding the codec set-up (Info, Tracks, ...)
and then Clusters: self-contained runs of audio blocks, each with its own timestamp. A section
is the set-up elements from the file's first bytes + the whole clusters found in the byte range
covering the wanted time; any Matroska file alike, its first audio track's blocks counted to check
the clusters' timestamps (Opus, Vorbis, AAC, MPEG audio, FLAC, PCM, AC-3, ALAC, DTS, TrueHD; a track's
frames inflated first where zlib compresses them). Index elements that point at
byte positions of the original file (SeekHead, Cues) are blanked out as Void, and the Segment's
size is marked unknown, so decoders read the short file to its end without looking for the rest.
"""
from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass

from bot.sources import flacsection as flac
from bot.sources import mp3section as mp3
from bot.sources.oggsection import (
    GRANULE_SLACK_S,
    OPUS_RATE,
    VorbisBlocks,
    opus_packet_samples,
    vorbis_packets_samples,
    vorbis_set_up,
)
from bot.sources.spans import StreamTimesLie, kept_span

log = logging.getLogger(__name__)

EBML_ID = 0x1A45DFA3
SEGMENT_ID = 0x18538067
CLUSTER_ID = 0x1F43B675
CLUSTER_MAGIC = CLUSTER_ID.to_bytes(4, "big")
INFO_ID = 0x1549A966
TIMESTAMP_SCALE_ID = 0x2AD7B1
DURATION_ID = 0x4489
CLUSTER_TIMESTAMP_ID = 0xE7
VOID_ID = 0xEC
CRC32_ID = 0xBF  # a checksum of its parent's other children, first in it: ffmpeg's Matroska has them
BLANKED = {0x114D9B74, 0x1C53BB6B}  # SeekHead, Cues: byte positions in the original file
ATTACHMENTS_ID = 0x1941A469  # attached files (cover art), which a section goes without
TRACKS_ID, TRACK_ENTRY_ID, CODEC_ID, CODEC_PRIVATE_ID = 0x1654AE6B, 0xAE, 0x86, 0x63A2
TRACK_NUMBER_ID, TRACK_TYPE_ID = 0xD7, 0x83
AUDIO_TRACK_TYPE = 2
AUDIO_ID, SAMPLING_FREQUENCY_ID, CHANNELS_ID, BIT_DEPTH_ID = 0xE1, 0xB5, 0x9F, 0x6264  # a track's Audio element
# A track's ContentEncodings: its frames compressed (zlib, ...) or encrypted, or their first bytes
# stripped (older mkvmerge's MP3, AC-3, DTS, by default), which ContentCompSettings holds.
CONTENT_ENCODINGS_ID, CONTENT_ENCODING_ID, CONTENT_SCOPE_ID, CONTENT_TYPE_ID = 0x6D80, 0x6240, 0x5032, 0x5033
CONTENT_COMPRESSION_ID, COMP_ALGO_ID, COMP_SETTINGS_ID = 0x5034, 0x4254, 0x4255
ZLIB, HEADER_STRIPPING, FRAMES_SCOPE = 0, 3, 1
MAX_INFLATED_BYTES = 1 << 20  # what a zlib-compressed frame may inflate to (a 6-channel ALAC frame: 150 kB)
DEFAULT_RATE, DEFAULT_CHANNELS = 8000.0, 1  # where the Audio element leaves them out (mkvmerge's mono: Channels)
AAC = b"A_AAC"  # its CodecPrivate an AudioSpecificConfig (ISO 14496-3, 1.6.2.1)
MPEG_AUDIO = (b"A_MPEG/L3", b"A_MPEG/L2", b"A_MPEG/L1")  # blocks of whole frames, whose headers say their samples
PCM = (b"A_PCM/INT/LIT", b"A_PCM/INT/BIG", b"A_PCM/FLOAT/IEEE")
AC3 = (b"A_AC3", b"A_EAC3")  # blocks of whole syncframes (ATSC A/52), whose headers say their lengths
AC3_SYNC = b"\x0b\x77"
AC3_RATES, EAC3_HALF_RATES = (48000, 44100, 32000), (24000, 22050, 16000)
# AC-3's bit rates (kbit/s) by frame size code // 2: a frame is 1 536 samples, and so many 16-bit
# words: 2 a kbit/s at 48 kHz, 3 at 32 kHz, at 44.1 kHz 1 536 / 44.1 / 16 (one more for an odd code).
AC3_KBITS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640)
AC3_SAMPLES, EAC3_BLOCK_SAMPLES, EAC3_BLOCKS = 1536, 256, (1, 2, 3, 6)
AC3_MAX_BSID, EAC3_MIN_BSID, EAC3_MAX_BSID = 8, 11, 16
EAC3_DEPENDENT = 1  # a substream type that adds channels to the frame before it, not time
ALAC = b"A_ALAC"  # its CodecPrivate an ALACSpecificConfig (Apple's ALAC format), maybe in its 'alac' atom
ALAC_CONFIG_BYTES, ALAC_ATOM_HEADER = 24, 12
ALAC_ELEMENTS = (0, 1, 3)  # a frame's first element: one channel, a pair, or LFE (FFmpeg decodes no other)
DTS = b"A_DTS"  # blocks of DTS frames: a core frame (ETSI TS 102 114, 5.3), maybe DTS-HD's extension after it
DTS_SYNC, DTS_SUBSTREAM_SYNC = b"\x7f\xfe\x80\x01", b"\x64\x58\x20\x25"
DTS_RATES = (0, 8000, 16000, 32000, 0, 0, 11025, 22050, 44100, 0, 0, 12000, 24000, 48000, 0, 0)
DTS_BLOCK_SAMPLES, DTS_MIN_BLOCKS, DTS_MIN_FRAME = 32, 6, 96
TRUEHD = b"A_TRUEHD"  # blocks of access units, each 1/1200 s of a 48 kHz family's rate (1/1102.5 s of 44.1 kHz's)
TRUEHD_MAJOR_SYNC = b"\xf8\x72\x6f\xba"  # in some access units, after their 4-byte header: it states the rate
TRUEHD_UNIT_SAMPLES, TRUEHD_HEADER_BYTES = 40, 4  # samples an access unit plays at the family's base rate
FLAC_PRIVATE = flac.MAGIC  # a FLAC track's CodecPrivate: fLaC, then its metadata blocks, STREAMINFO first
STREAMINFO_BYTES = 34
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
# AAC's audio object types whose config starts with a frame-length flag: 960 samples a frame for
# it, else 1 024 (Main, LC, SSR, LTP, Scalable, TwinVQ, and their error-resilient forms); AAC-LD
# (23) 480, else 512. SBR and PS (5, 29) name the core's type after the output rate: the core's
# frames, at the core's rate (the first one the config states), play as long as the output's.
AAC_FRAMES = {**{kind: (1024, 960) for kind in (1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22)}, 23: (512, 480)}
AAC_SBR = (5, 29)
AAC_BSAC = 22  # after SBR, its config has a channel configuration of its own before the flag
VORBIS_HEADERS = 3  # identification, comment, setup: a Vorbis track's CodecPrivate, Xiph-laced
SIMPLE_BLOCK_ID, BLOCK_GROUP_ID, BLOCK_ID = 0xA3, 0xA0, 0xA1
LACING_FLAGS = 0x06  # a block's flags: its frames are laced (several in one block)
XIPH_LACING, FIXED_LACING, EBML_LACING = 0x02, 0x04, 0x06
DEFAULT_TIMESTAMP_SCALE_NS = 1_000_000
MAX_UINT_BYTES = 8  # an EBML unsigned integer's longest
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Element:
    id: int
    start: int  # offset of the ID
    data_start: int  # offset of the payload
    size: int | None  # None: unknown size
    size_len: int

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.data_start + self.size


def read_vint(buf: bytes, at: int, keep_marker: bool) -> tuple[int, int] | None:
    """(value, length) of the EBML variable-length integer at `at`; None if cut off or invalid."""
    if at >= len(buf) or buf[at] == 0:
        return None
    first = buf[at]
    length = 8 - first.bit_length() + 1
    if at + length > len(buf):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for b in buf[at + 1:at + length]:
        value = (value << 8) | b
    return value, length


def read_element(buf: bytes, at: int) -> Element | None:
    ident = read_vint(buf, at, keep_marker=True)
    if ident is None or ident[1] > 4:
        return None
    size = read_vint(buf, at + ident[1], keep_marker=False)
    if size is None:
        return None
    value, size_len = size
    unknown = value == (1 << (7 * size_len)) - 1
    return Element(ident[0], at, at + ident[1] + size_len, None if unknown else value, size_len)


def void_element(total: int) -> bytes:
    """A Void element exactly `total` bytes long (total >= 2), to blank out an element."""
    if total - 2 < 0x7F:
        return bytes([VOID_ID, 0x80 | (total - 2)]) + b"\0" * (total - 2)
    size = total - 1 - 8
    return bytes([VOID_ID, 0x01]) + size.to_bytes(7, "big") + b"\0" * size


def unknown_size(length: int) -> bytes:
    """The `length`-byte EBML size meaning "unknown": the length marker, then all ones."""
    return bytes([(1 << (9 - length)) - 1]) + b"\xff" * (length - 1)


def info_children(buf: bytes, info: Element) -> list[Element] | None:
    """The children of an Info element (whole in `buf`); None if one is cut off or claims more
    bytes than Info holds (its header alone is 12 bytes for any length)."""
    return children_of(buf, info)


def timestamp_scale(raw: bytes) -> int | None:
    """A TimestampScale's value (ns); None if it is longer than an EBML integer may be (8 bytes):
    a number too large for a float."""
    if len(raw) > MAX_UINT_BYTES:
        return None
    return int.from_bytes(raw, "big") or DEFAULT_TIMESTAMP_SCALE_NS


def read_info(buf: bytes, info: Element) -> tuple[bytes, int] | None:
    """(the Info element with its Duration blanked — the section is shorter —, timestamp scale);
    None if Info's children do not fit in it or its scale is no number."""
    out = bytearray(buf[info.start:info.end])
    scale: int | None = DEFAULT_TIMESTAMP_SCALE_NS
    children = info_children(buf, info)
    if children is None:
        return None
    for child in children:
        if child.id == TIMESTAMP_SCALE_ID:
            scale = timestamp_scale(buf[child.data_start:child.end])
        elif child.id in (DURATION_ID, CRC32_ID):  # Info's checksum: of the Duration too
            out[child.start - info.start:child.end - info.start] = void_element(child.end - child.start)
    return (bytes(out), scale) if scale is not None else None


@dataclass(frozen=True)
class Header:
    data: bytes  # EBML header + Segment start + set-up elements, ready to prepend
    timestamp_scale_ns: int
    seconds: float | None = None  # the Duration the Info element states, if any
    opus: bool = False  # the audio track is Opus: its blocks' TOC bytes say how long they play
    vorbis: VorbisBlocks | None = None  # it is Vorbis: its blocks' modes say, at vorbis_rate
    vorbis_rate: int = 0
    track: int | None = None  # the first audio track's number: only its blocks are counted
    frames: FrameCount | None = None  # its codec is AAC, MPEG audio, FLAC or PCM: its frames say
    codec: bytes = b""  # its codec ID
    stripped: bytes = b""  # what its ContentEncoding strips from each frame's start, put back to count it
    zlib: bool = False  # its ContentEncoding compresses each frame with zlib: inflated to count it


def children_of(buf: bytes, parent: Element) -> list[Element] | None:
    """The children of an element whole in `buf`; None if one is cut off, of unknown size, or
    claims more bytes than its parent holds."""
    found, at = [], parent.data_start
    while parent.end is not None and at < parent.end:
        child = read_element(buf, at)
        if child is None or child.end is None or child.end > parent.end:
            return None
        found.append(child)
        at = child.end
    return found


@dataclass(frozen=True)
class AudioTrack:
    number: int  # what its blocks name it by
    codec: bytes  # its codec ID (b"A_OPUS")
    private: bytes  # its CodecPrivate, empty if none
    rate: float | None = None  # what its Audio element states
    channels: int | None = None
    bit_depth: int | None = None
    stripped: bytes | None = b""  # the bytes stripped from each frame's start; None: encoded otherwise
    zlib: bool = False  # each frame compressed by zlib (mkvmerge's --compression TID:zlib)


def stripped_bytes(buf: bytes, children: list[Element]) -> bytes | bool | None:
    """The bytes a TrackEntry's ContentEncodings strip from each of its frames (empty where it has
    none), or True where they compress each frame, and each frame only, with zlib; None where they
    encode its frames or CodecPrivate otherwise (bzlib, lzo, encryption...): its frames' bytes are
    not the codec's."""
    encodings = [c for c in children if c.id == CONTENT_ENCODINGS_ID]
    if not encodings:
        return b""
    found = [c for c in children_of(buf, encodings[0]) or () if c.id == CONTENT_ENCODING_ID]
    if len(encodings) != 1 or len(found) != 1:
        return None
    fields = {c.id: buf[c.data_start:c.end] for c in children_of(buf, found[0]) or ()}
    scope, kind = (int.from_bytes(fields.get(key, default), "big") for key, default in
                   ((CONTENT_SCOPE_ID, bytes([FRAMES_SCOPE])), (CONTENT_TYPE_ID, b"\0")))
    compression = next((c for c in children_of(buf, found[0]) or () if c.id == CONTENT_COMPRESSION_ID), None)
    if scope != FRAMES_SCOPE or kind != 0 or compression is None:  # the CodecPrivate too; encryption
        return None
    settings = {c.id: buf[c.data_start:c.end] for c in children_of(buf, compression) or ()}
    algorithm = int.from_bytes(settings.get(COMP_ALGO_ID, b"\0"), "big")
    if algorithm == ZLIB:
        return True
    if algorithm != HEADER_STRIPPING:  # bzlib, lzo
        return None
    return settings.get(COMP_SETTINGS_ID, b"")


def inflated(frame: bytes) -> bytes | None:
    """A zlib-compressed frame's bytes; None where they are no whole zlib stream, or would inflate
    past MAX_INFLATED_BYTES (a host's bytes: a frame of zeros deflates 1 000 times)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(frame, MAX_INFLATED_BYTES)
    except zlib.error:
        return None
    return out if inflater.eof and not inflater.unconsumed_tail else None


def audio_settings(buf: bytes, children: list[Element]) -> tuple[float | None, int | None, int | None]:
    """(sampling frequency, channels, bit depth) a TrackEntry's Audio element states: the first two
    Matroska's defaults where it leaves them out, the bit depth None (it has none), each None
    where it is not a number."""
    audio = next((c for c in children if c.id == AUDIO_ID), None)
    rate, channels, depth = DEFAULT_RATE, DEFAULT_CHANNELS, None
    for child in (children_of(buf, audio) or ()) if audio else ():
        raw = buf[child.data_start:child.end]
        if child.id == SAMPLING_FREQUENCY_ID:
            rate = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0] if len(raw) in (4, 8) else None
        elif child.id == CHANNELS_ID:
            channels = int.from_bytes(raw, "big") if 0 < len(raw) <= MAX_UINT_BYTES else None
        elif child.id == BIT_DEPTH_ID:
            depth = int.from_bytes(raw, "big") if 0 < len(raw) <= MAX_UINT_BYTES else None
    return rate, channels, depth


@dataclass(frozen=True)
class FrameCount:
    """What an AAC, MPEG audio, FLAC or PCM track's frames (a block's, or a laced block's each)
    play: an AAC frame `samples` at `rate`; an MPEG audio block what its frames' headers say; a
    FLAC frame what its header says, at the rate of `streaminfo`; PCM its bytes over `samples`
    bytes a sample (all channels), at `rate`."""

    kind: str  # "aac", "mpeg", "flac", "pcm", "ac3", "alac", "dts", "truehd"
    rate: float = 0.0  # TrueHD: its family's base rate the track states (48 or 44.1 kHz), 0 if neither
    samples: int = 0
    streaminfo: flac.StreamInfo | None = None

    def seconds(self, frame: bytes) -> float | None:
        """What `frame` plays; None where its bytes do not say (or not as the track does)."""
        if self.kind == "aac":
            return self.samples / self.rate if frame else 0.0
        if self.kind == "alac":
            samples = alac_frame_samples(frame, self.samples)
            return None if samples is None else samples / self.rate
        if self.kind == "dts":
            return dts_seconds(frame)
        if self.kind == "truehd":
            return truehd_seconds(frame, self.rate)
        if self.kind == "pcm":
            return len(frame) / self.samples / self.rate if len(frame) % self.samples == 0 else None
        if self.kind == "ac3":
            return ac3_seconds(frame)
        if self.kind == "flac":
            header = flac.read_frame(frame, 0, self.streaminfo)
            return None if header is None or header.block is None else header.block / self.streaminfo.sample_rate
        total, at = 0.0, 0
        while at < len(frame):
            header = mp3.read_frame(frame, at)
            if header is None:
                return None
            total += header.samples / header.sample_rate
            at += header.length
        return total if at == len(frame) else None


def ac3_frame(buf: bytes, at: int) -> tuple[int, float] | None:
    """(bytes, seconds it plays) of the AC-3 or E-AC-3 syncframe at `at`; None where none is, or its
    header says no length or rate. An E-AC-3 dependent substream's frame plays no time of its own."""
    if buf[at:at + 2] != AC3_SYNC or at + 6 > len(buf):
        return None
    bsid = buf[at + 5] >> 3
    fscod = buf[at + 4] >> 6
    if bsid <= AC3_MAX_BSID:
        code = buf[at + 4] & 0x3F
        if fscod == 3 or code // 2 >= len(AC3_KBITS):
            return None
        kbits = AC3_KBITS[code // 2]
        words = (kbits * 2, kbits * AC3_SAMPLES * 1000 // 44100 // 16 + (code & 1), kbits * 3)[fscod]
        return words * 2, AC3_SAMPLES / AC3_RATES[fscod]
    if not EAC3_MIN_BSID <= bsid <= EAC3_MAX_BSID:
        return None
    length, code = ((buf[at + 2] & 0x07) << 8 | buf[at + 3]) * 2 + 2, buf[at + 4] >> 4 & 0x03
    if fscod == 3 and code == 3:
        return None  # a reserved rate
    rate = EAC3_HALF_RATES[code] if fscod == 3 else AC3_RATES[fscod]
    blocks = EAC3_BLOCKS[-1] if fscod == 3 else EAC3_BLOCKS[code]  # at a half rate, always 6
    dependent = buf[at + 2] >> 6 == EAC3_DEPENDENT
    return length, 0.0 if dependent else blocks * EAC3_BLOCK_SAMPLES / rate


def ac3_seconds(frame: bytes) -> float | None:
    """What the AC-3 or E-AC-3 syncframes of a block play; None where they do not fill it."""
    total, at = 0.0, 0
    while at < len(frame):
        found = ac3_frame(frame, at)
        if found is None:
            return None
        total += found[1]
        at += found[0]
    return total if at == len(frame) else None


def alac_config(private: bytes) -> tuple[int, int] | None:
    """(samples a frame, their rate) an ALAC track's CodecPrivate states: its ALACSpecificConfig, bare
    as Matroska's specification has it or in its 'alac' atom; None where it holds none."""
    if private[4:8] == b"alac":
        private = private[ALAC_ATOM_HEADER:]
    if len(private) < ALAC_CONFIG_BYTES:
        return None
    samples, rate = struct.unpack_from(">I", private, 0)[0], struct.unpack_from(">I", private, 20)[0]
    return (samples, rate) if samples and rate else None


def alac_frame_samples(frame: bytes, frame_length: int) -> int | None:
    """The samples an ALAC frame plays: the count its first element's header states where it has one
    (a song's last frame), else the track's frame length; None where it starts with no channel
    element, or states more than the frame length (FFmpeg refuses both)."""
    bits = Bits(frame[:9])
    element = bits.read(3)
    if element not in ALAC_ELEMENTS or bits.read(16) is None:  # its instance tag, 12 unused bits
        return None
    has_size, _ = bits.read(1), bits.read(3)  # the bytes shifted, the escape flag
    if not has_size:
        return frame_length if has_size is not None else None
    samples = bits.read(32)
    return samples if samples is not None and samples <= frame_length else None


def dts_seconds(frame: bytes) -> float | None:
    """What a DTS block plays: its core frames' samples (32 a block, as many blocks as each header says)
    at their header's rate, and nothing more for a DTS-HD extension substream after them; None where
    a frame has no core (DTS Express) or its header says no length or rate, or they do not fill it."""
    total, at = 0.0, 0
    while at < len(frame):
        if at and frame[at:at + len(DTS_SUBSTREAM_SYNC)] == DTS_SUBSTREAM_SYNC:
            return total  # the extension of the core frames before it: the same time, in more detail
        if frame[at:at + len(DTS_SYNC)] != DTS_SYNC:
            return None
        bits = Bits(frame[at + len(DTS_SYNC):at + len(DTS_SYNC) + 5])
        bits.read(7)  # frame type, deficit sample count, CRC flag
        blocks, size, _, rate = bits.read(7), bits.read(14), bits.read(6), bits.read(4)
        if None in (blocks, size, rate) or blocks + 1 < DTS_MIN_BLOCKS or size + 1 < DTS_MIN_FRAME or not DTS_RATES[rate]:
            return None
        total += (blocks + 1) * DTS_BLOCK_SAMPLES / DTS_RATES[rate]
        at += size + 1
    return total if at == len(frame) else None


def truehd_seconds(frame: bytes, stated_rate: float) -> float | None:
    """What a TrueHD block plays: 40 samples an access unit (each header says its length) at 48 or
    44.1 kHz, as its major sync states where it has one, else as the track does (`stated_rate`, 0 if
    neither); None where they do not fill it."""
    units, rate, at = 0, stated_rate, 0
    while at < len(frame):
        if at + TRUEHD_HEADER_BYTES > len(frame):
            return None
        length = ((frame[at] & 0x0F) << 8 | frame[at + 1]) * 2
        if length <= TRUEHD_HEADER_BYTES:
            return None
        sync_at = at + TRUEHD_HEADER_BYTES
        if frame[sync_at:sync_at + len(TRUEHD_MAJOR_SYNC)] == TRUEHD_MAJOR_SYNC and sync_at + 4 < len(frame):
            code = frame[sync_at + 4] >> 4
            rate = 0 if code == 0xF else 44100 if code & 8 else 48000
        units += 1
        at += length
    return units * TRUEHD_UNIT_SAMPLES / rate if at == len(frame) and rate else None


def truehd_family(rate: float | None) -> int:
    """The base rate of the family a TrueHD track's stated rate is of (96 kHz: 48 kHz's); 0 for neither."""
    return next((base for base in (48000, 44100) if rate and rate % base == 0), 0)


class Bits:
    """The bits of `data`, first to last, read a few at a time; None once they run out."""

    def __init__(self, data: bytes):
        self.value, self.left = int.from_bytes(data, "big"), len(data) * 8

    def read(self, count: int) -> int | None:
        if count > self.left:
            return None
        self.left -= count
        return self.value >> self.left & ((1 << count) - 1)


def aac_config(private: bytes) -> tuple[int, int] | None:
    """(samples a frame, their rate) of the AAC an AudioSpecificConfig describes; None for an
    object type whose frames this does not know, or a config cut short."""
    bits = Bits(private[:16])

    def object_type() -> int | None:
        kind = bits.read(5)
        if kind == 31:
            more = bits.read(6)
            return None if more is None else 32 + more
        return kind

    def rate() -> int | None:
        index = bits.read(4)
        if index == 15:
            return bits.read(24)
        return AAC_RATES[index] if index is not None and index < len(AAC_RATES) else None

    kind, core_rate = object_type(), rate()
    if bits.read(4) is None:  # channel configuration
        return None
    if kind in AAC_SBR:
        if rate() is None:  # the output's rate
            return None
        kind = object_type()
        if kind == AAC_BSAC and bits.read(4) is None:
            return None
    short = bits.read(1)  # a GASpecificConfig's frame-length flag
    if kind not in AAC_FRAMES or not core_rate or short is None:
        return None
    return AAC_FRAMES[kind][short], core_rate


def frame_count(track: AudioTrack) -> FrameCount | None:
    """How an AAC, MPEG audio, FLAC or PCM track's frames say what they play; None for another
    codec, or a track whose set-up does not say what its frames need."""
    if track.codec == AAC:
        config = aac_config(track.private)
        return FrameCount("aac", config[1], config[0]) if config else None
    if track.codec in MPEG_AUDIO:
        return FrameCount("mpeg")
    if track.codec in AC3:
        return FrameCount("ac3")
    if track.codec == DTS:
        return FrameCount("dts")
    if track.codec == TRUEHD:
        return FrameCount("truehd", truehd_family(track.rate))
    if track.codec == ALAC:
        config = alac_config(track.private)
        return FrameCount("alac", config[1], config[0]) if config else None
    if track.codec == b"A_FLAC":
        private = track.private
        if not private.startswith(FLAC_PRIVATE) or len(private) < 8 or private[4] & 0x7F:  # STREAMINFO first
            return None
        info = flac.parse_streaminfo(private[8:8 + STREAMINFO_BYTES])
        return FrameCount("flac", streaminfo=info) if info else None
    if track.codec in PCM:
        rate, channels, depth = track.rate, track.channels, track.bit_depth
        if not (rate and 0 < rate < float("inf") and channels and depth) or depth % 8:
            return None
        return FrameCount("pcm", rate, channels * depth // 8)
    return None


def audio_track(buf: bytes, tracks: Element) -> AudioTrack | None:
    """A Tracks element's first audio track: the one FFmpeg's demuxer, and so the classifier,
    decodes (its first audio stream), beside a video or other audio tracks. None if there is
    none, or it has no number or not one codec ID."""
    for entry in (c for c in children_of(buf, tracks) or () if c.id == TRACK_ENTRY_ID):
        children = children_of(buf, entry) or ()
        kinds = [buf[c.data_start:c.end] for c in children if c.id == TRACK_TYPE_ID]
        if kinds != [bytes([AUDIO_TRACK_TYPE])]:
            continue
        numbers = [buf[c.data_start:c.end] for c in children if c.id == TRACK_NUMBER_ID]
        codecs = [buf[c.data_start:c.end] for c in children if c.id == CODEC_ID]
        private = next((buf[c.data_start:c.end] for c in children if c.id == CODEC_PRIVATE_ID), b"")
        if len(numbers) != 1 or not 0 < len(numbers[0]) <= MAX_UINT_BYTES or len(codecs) != 1:
            return None
        encoding = stripped_bytes(buf, children)
        return AudioTrack(int.from_bytes(numbers[0], "big"), codecs[0], private, *audio_settings(buf, children),
                          b"" if encoding is True else encoding, encoding is True)
    return None


def xiph_packets(private: bytes) -> list[bytes] | None:
    """The packets Xiph lacing packs in a CodecPrivate (a Vorbis track's headers) or in a block:
    their count less one, the size of each but the last as bytes of 255 ended by one under 255,
    then the packets; None if the bytes do not hold them."""
    return laced_frames(private, XIPH_LACING)


def laced_frames(data: bytes, lacing: int) -> list[bytes] | None:
    """The frames of a laced block (`data`: its bytes after the flags): their count less one, then
    the size of each but the last (Xiph: as bytes of 255 ended by one under 255; EBML: the first
    an EBML number, each next one a signed difference from the one before; fixed: none, all of a
    size), then the frames. None if the bytes do not hold them."""
    if not data:
        return None
    count, at, sizes = data[0] + 1, 1, []
    if lacing == XIPH_LACING:
        for _ in range(count - 1):
            size = 0
            while True:
                if at >= len(data):
                    return None
                size += data[at]
                at += 1
                if data[at - 1] < 255:
                    break
            sizes.append(size)
    elif lacing == EBML_LACING:
        size = 0
        for i in range(count - 1):
            number = read_vint(data, at, keep_marker=False)
            if number is None:
                return None
            value, length = number
            size = value if i == 0 else size + value - ((1 << (7 * length - 1)) - 1)
            if size < 0:
                return None
            sizes.append(size)
            at += length
    else:
        if (len(data) - 1) % count:
            return None
        sizes = [(len(data) - 1) // count] * (count - 1)
    frames = []
    for size in sizes:
        frames.append(data[at:at + size])
        at += size
    if at > len(data):
        return None
    return [*frames, data[at:]]


def vorbis_track(private: bytes) -> tuple[VorbisBlocks, int] | None:
    """(block sizes and modes, sample rate) of a Vorbis track from its CodecPrivate; None if it
    does not hold three headers that say them."""
    packets = xiph_packets(private)
    if packets is None or len(packets) != VORBIS_HEADERS:
        return None
    ident, _, setup = packets
    blocks = vorbis_set_up(ident, setup)
    if blocks is None:
        return None
    rate = struct.unpack_from("<I", ident, 12)[0]  # vorbis_set_up took only 30 bytes or more
    return (blocks, rate) if rate else None


def track_blocks(cluster: bytes, track: int | None = None) -> list[tuple[int, int, int]] | None:
    """(timestamp relative to the cluster's, where its flags are, where it ends) of each block in a
    cluster (its bytes, whole) of track number `track` only (all: None); None where a block is cut
    short or the cluster cannot be read."""
    root = read_element(cluster, 0)
    if root is None or root.end is None or root.end > len(cluster):
        return None
    blocks = []
    for child in children_of(cluster, root) or ():  # a cluster whose children do not fit: none checked
        block = child
        if child.id == BLOCK_GROUP_ID:
            block = next((c for c in children_of(cluster, child) or () if c.id == BLOCK_ID), None)
            if block is None:
                return None
        elif child.id != SIMPLE_BLOCK_ID:
            continue
        number = read_vint(cluster, block.data_start, keep_marker=False)
        if number is None:
            return None
        if track is not None and number[0] != track:
            continue  # another track's: a video's, a second sound's
        flags_at = block.data_start + number[1] + 2  # after the track number and the relative timestamp
        if flags_at >= block.end:
            return None
        blocks.append((struct.unpack_from(">h", cluster, flags_at - 2)[0], flags_at, block.end))
    return blocks


def first_block_time(cluster: bytes, track: int) -> int | None:
    """The timestamp of track `track`'s first block in a cluster (its bytes, whole), relative to the
    cluster's; None where it has none, or the cluster cannot be read."""
    blocks = track_blocks(cluster, track)
    return blocks[0][0] if blocks else None


def block_frames(cluster: bytes, track: int | None = None) -> list[bytes] | None:
    """Each frame of the blocks in a cluster (its bytes, whole), a laced block's each, of track
    number `track` only (all: None); None where a block is cut short, its lacing does not fit its
    bytes, or the cluster cannot be read."""
    blocks = track_blocks(cluster, track)
    if blocks is None:
        return None
    starts = []
    for _, flags_at, end in blocks:
        lacing = cluster[flags_at] & LACING_FLAGS
        if not lacing:
            starts.append(cluster[flags_at + 1:end])
            continue
        frames = laced_frames(cluster[flags_at + 1:end], lacing)
        if frames is None:
            return None
        starts += frames
    return starts


def cluster_opus_samples(cluster: bytes, track: int | None = None) -> int | None:
    """The 48 kHz samples the Opus blocks of a cluster (its bytes, whole; of track `track` only
    unless None) play by their TOC bytes; None where a block is cut short or its lacing does not
    fit, or the cluster cannot be read."""
    starts = block_frames(cluster, track)
    if starts is None:
        return None
    total = 0
    for start in starts:
        samples = opus_packet_samples(start)
        if samples is None:
            return None
        total += samples
    return total


def clusters_play(header: Header, clusters: list[bytes]) -> float | None:
    """The seconds the audio track's blocks in `clusters` (whole, one after the other) play by their
    own bytes: an Opus block by its TOC byte, a Vorbis one by its mode (the block before it carried
    over from one cluster to the next), an AAC, MPEG audio, FLAC or PCM one as its FrameCount says;
    None for another codec, or where a block does not say."""
    if not (header.opus or header.vorbis or header.frames):
        return None
    frames: list[bytes] = []
    for raw in clusters:
        found = block_frames(raw, header.track)
        if found is None:
            return None
        if header.zlib:
            found = [inflated(frame) for frame in found]
            if None in found:
                return None
        frames += (header.stripped + frame for frame in found) if header.stripped else found
    if header.opus:
        plays = [opus_packet_samples(frame) for frame in frames]
        return None if None in plays else sum(plays) / OPUS_RATE
    if header.frames is not None:
        seconds = [header.frames.seconds(frame) for frame in frames]
        return None if None in seconds else sum(seconds)
    samples = vorbis_packets_samples(header.vorbis, frames)
    return None if samples is None else samples / header.vorbis_rate


def info_seconds(buf: bytes, info: Element) -> float | None:
    """The Duration an Info element states (a float, in timestamp-scale units), in seconds."""
    scale, duration = DEFAULT_TIMESTAMP_SCALE_NS, None
    for child in info_children(buf, info) or ():
        raw = buf[child.data_start:child.end]
        if child.id == TIMESTAMP_SCALE_ID:
            scale = timestamp_scale(raw)
        elif child.id == DURATION_ID and len(raw) in (4, 8):
            duration = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0]
    seconds = duration * scale / NS_PER_S if duration is not None and scale is not None else None
    return seconds if seconds is not None and 0 < seconds < float("inf") else None


def parse_header(prefix: bytes) -> Header | None:
    """The set-up part of a WebM file (everything before the first Cluster), or None if `prefix`
    is not WebM or does not reach the first Cluster."""
    ebml = read_element(prefix, 0)
    if ebml is None or ebml.id != EBML_ID or ebml.end is None:
        return None
    segment = read_element(prefix, ebml.end)
    if segment is None or segment.id != SEGMENT_ID:
        return None
    out = bytearray(prefix[:segment.data_start])
    out[segment.data_start - segment.size_len:segment.data_start] = unknown_size(segment.size_len)
    scale = DEFAULT_TIMESTAMP_SCALE_NS
    seconds, opus, vorbis, track, counted = None, False, None, None, False
    at = segment.data_start
    while True:
        child = read_element(prefix, at)
        if child is None:
            return None
        if child.id == CLUSTER_ID:
            return Header(bytes(out), scale, seconds, opus, *(vorbis or (None, 0)), track.number if track else None,
                          frame_count(track) if counted else None, track.codec if track else b"",
                          (track.stripped or b"") if track else b"", bool(track and track.zlib))
        if child.end is None or child.end > len(prefix):
            return None
        raw = prefix[child.start:child.end]
        if child.id in BLANKED:
            raw = void_element(len(raw))
        elif child.id == INFO_ID:
            info = read_info(prefix, child)
            if info is None:
                return None
            seconds = info_seconds(prefix, child)
            raw, scale = info
        elif child.id == TRACKS_ID:
            track = audio_track(prefix, child)
            counted = track is not None and track.stripped is not None  # not bzlib's, lzo's: the bytes say
            opus = counted and track.codec == b"A_OPUS"
            vorbis = vorbis_track(track.private) if counted and track.codec == b"A_VORBIS" else None
        out += raw
        at = child.end


def set_up_gap(prefix: bytes) -> tuple[int, int] | None:
    """(start, end) of the Attachments element (cover art) in the set-up of a Matroska file whose
    first bytes are `prefix`, where it runs past them: the set-up goes on at its end, and a
    section goes without it. None where there is none such, or the set-up cannot be read up to it."""
    ebml = read_element(prefix, 0)
    segment = read_element(prefix, ebml.end) if ebml is not None and ebml.id == EBML_ID and ebml.end else None
    if segment is None or segment.id != SEGMENT_ID:
        return None
    at = segment.data_start
    while (child := read_element(prefix, at)) is not None and child.id != CLUSTER_ID and child.end is not None:
        if child.end > len(prefix):
            return (child.start, child.end) if child.id == ATTACHMENTS_ID else None
        at = child.end
    return None


def _cluster_timestamp(buf: bytes, cluster: Element) -> int | None:
    """A cluster's timestamp: its first child, but for a CRC-32 or Void before it (ffmpeg's
    Matroska has a CRC-32 first in each cluster, and no cluster of it was found)."""
    first = read_element(buf, cluster.data_start)
    while first is not None and first.id in (CRC32_ID, VOID_ID) and first.end is not None \
            and first.end < min(cluster.end or len(buf), len(buf)):
        first = read_element(buf, first.end)
    if first is None or first.id != CLUSTER_TIMESTAMP_ID or first.end is None or first.size > 8:
        return None
    return int.from_bytes(buf[first.data_start:first.end], "big")


def clusters_in(buf: bytes) -> list[tuple[int, bytes]]:
    """(timestamp, bytes) of each whole Cluster in a run of consecutive ones found in `buf`."""
    at = buf.find(CLUSTER_MAGIC)
    while at != -1:
        found = []
        pos = at
        while True:
            cluster = read_element(buf, pos)
            if cluster is None or cluster.id != CLUSTER_ID or cluster.end is None or cluster.end > len(buf):
                break
            timestamp = _cluster_timestamp(buf, cluster)
            if timestamp is None:
                break
            found.append((timestamp, buf[cluster.start:cluster.end]))
            pos = cluster.end
        if found:
            return found
        at = buf.find(CLUSTER_MAGIC, at + 1)  # a false match inside audio data: look further
    return []


def splice_section(prefix: bytes, middle: bytes, max_seconds: float | None = None) -> tuple[bytes, float, float] | None:
    """(a playable WebM file, where it starts and ends in the song in seconds): the set-up of
    `prefix` + the whole clusters found in `middle`, trimmed to about `max_seconds`. None if this
    cannot be done safely (caller falls back); StreamTimesLie if an Opus or Vorbis track's
    clusters play over 0.5 s more or less than their timestamps say."""
    header = parse_header(prefix)
    if header is None:
        return None
    clusters = clusters_in(middle)
    if not clusters:
        return None
    times = [timestamp for timestamp, _ in clusters]
    if header.track is not None:
        # Where the sound begins in each cluster: its first block, which need not be the
        # cluster's first (mkvmerge's Opus beside a video began 93 ms into the section's first).
        times = [time + (first_block_time(raw, header.track) or 0) for time, raw in clusters]
    if times != sorted(times):
        return None  # out of order: not a plain single-track file
    count, end = kept_span(times, None if max_seconds is None else max_seconds * NS_PER_S / header.timestamp_scale_ns)
    scale = header.timestamp_scale_ns / NS_PER_S
    followed = min(count, len(clusters) - 1)  # the clusters kept whose next one's timestamp is known
    if followed:
        # The clusters' timestamps say where the section lies and how long it lasts; its audio
        # track's blocks, how long it plays: a TimestampScale 0.3 times the stream's had a section
        # of a 240 s song said to lie at 30-39 s while it played 30 s (Opus), at 33-40 s while it
        # played 25 s (Vorbis), at 31-48 s while it played 55 s (AAC, MP3, PCM; FLAC 60 s).
        plays = clusters_play(header, [raw for _, raw in clusters[:followed]])
        stated = (times[followed] - times[0]) * scale
        if plays is not None and abs(stated - plays) > GRANULE_SLACK_S:
            raise StreamTimesLie
        if plays is None:  # another codec (WavPack, TTA...), or a block that does not say
            log.info("the %r blocks of a Matroska section do not say what they play: cut by its cluster "
                     "timestamps unchecked", header.codec[:32])
    return header.data + b"".join(raw for _, raw in clusters[:count]), times[0] * scale, end * scale
