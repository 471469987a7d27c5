"""What becomes of the input's other tracks (audio, subtitles, cover art) in the output container.

Each is kept: copied unchanged where the container holds its codec, else re-encoded to one it holds
(audio: FLAC from lossless audio where the container takes FLAC, else AAC, or Opus in WebM; text
subtitles: mov_text in mp4/mov, WebVTT in WebM, ASS in Matroska). What cannot be kept either way
(picture subtitles or cover art in WebM, say) refuses the file before any frame is upscaled, in one
line naming the track, the container and what to do: a track never vanishes silently. -v says what
was done with each (:attr:`TrackPlan.note`). Limits: streams of other kinds (data, timecode) are not
carried; in Matroska, cover art is kept as a one-picture video track (PyAV writes no attachment, so the
attached-picture mark is lost there; mp4 and mov keep it); text subtitles keep their text and times,
ASS styling only where the target is ASS.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import UserError
from .decode import is_cover_art

LOSSLESS_AUDIO = ("flac", "alac", "truehd", "mlp", "wavpack", "tta", "ape")
LOSSY_AUDIO = {"mp4": "aac", "mov": "aac", "mkv": "libopus", "webm": "libopus"}
TEXT_SUBTITLES = ("subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text")
TEXT_SUBTITLE_TARGET = {"mp4": "mov_text", "mov": "mov_text", "mkv": "ass", "webm": "webvtt"}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


@dataclass(frozen=True)
class TrackPlan:
    source: Any  # the input stream
    encoder: str | None  # None: copied unchanged
    note: str  # what -v says


def track_name(av: Any, stream: Any) -> str:
    kind = "cover art" if stream.type == "video" and is_cover_art(av, stream) else f"{stream.type} stream"
    return f"{kind} {stream.index} ({stream.codec_context.name})"


def plan_tracks(av: Any, streams: list[Any], container: str, supported: set[str]) -> list[TrackPlan]:
    """How each of ``streams`` goes into ``container`` (its muxer holds the codecs ``supported``); UserError
    for the first that cannot go in at all."""
    plans = []
    for stream in streams:
        name, what = stream.codec_context.name, track_name(av, stream)
        if name in supported:
            plans.append(TrackPlan(stream, None, f"{what}: copied"))
            continue
        encoder = _encoder_for(stream, container, supported)
        if encoder is None:
            raise UserError(f"{what} cannot go into {container}, and this tool cannot convert it to a codec "
                            f"{container} holds; nothing is written. Use --video-format mkv, or remove the track "
                            "first (ffmpeg -map)")
        plans.append(TrackPlan(stream, encoder, f"{what}: {container} cannot hold {name}, re-encoded as {encoder}"))
    return plans


def _encoder_for(stream: Any, container: str, supported: set[str]) -> str | None:
    name = stream.codec_context.name
    if stream.type == "audio":
        if (name.startswith("pcm_") or name in LOSSLESS_AUDIO) and "flac" in supported:
            return "flac"
        encoder = LOSSY_AUDIO[container]
        return encoder if encoder.removeprefix("lib") in supported else None
    if stream.type == "subtitle" and name in TEXT_SUBTITLES:
        target = TEXT_SUBTITLE_TARGET[container]
        return target if target in supported else None
    return None


def add_output_track(output: Any, plan: TrackPlan) -> Any:
    """The output stream for ``plan``: a copy of the input's, or a new encoder."""
    source = plan.source
    if plan.encoder is None:
        stream = output.add_stream_from_template(source)
        if source.type == "video":
            stream.disposition = source.disposition
        return stream
    if source.type == "audio":
        ctx = source.codec_context
        rate = ctx.sample_rate
        if plan.encoder == "libopus" and rate not in OPUS_RATES:
            rate = 48000
        return output.add_stream(plan.encoder, rate=rate, layout=ctx.layout.name)
    stream = output.add_stream(plan.encoder)
    decoder = source.codec_context
    if not decoder.is_open:
        decoder.open(strict=False)
    stream.codec_context.subtitle_header = decoder.subtitle_header or b""
    stream.time_base = Fraction(1, 1000)
    return stream


class Transcoder:
    """Decodes one input track's packets and encodes them for its output stream."""

    def __init__(self, av: Any, source: Any, target: Any) -> None:
        self.av, self.source, self.target = av, source, target

    def packets(self, packet: Any) -> list[Any]:
        """Output packets for one input packet (None: the end, flushing decoder and encoder)."""
        if self.source.type == "audio":
            out = []
            for frame in self.source.codec_context.decode(packet):
                out += self.target.encode(frame)
            if packet is None:
                out += self.target.encode(None)
            return out
        return self._subtitles(packet) if packet is not None else []

    def _subtitles(self, packet: Any) -> list[Any]:
        out = []
        base = packet.time_base or self.source.time_base
        subtitle = self.source.codec_context.decode2(packet)
        if subtitle is not None:
            start = packet.pts * base if packet.pts is not None else Fraction(0)
            ms = self.target.time_base
            begin = round((start + Fraction(subtitle.start_display_time, 1000)) / ms)
            length = round(Fraction(subtitle.end_display_time - subtitle.start_display_time, 1000) / ms)
            if not length and packet.duration:
                length = round(packet.duration * base / ms)
            for rect in subtitle:
                if text := getattr(rect, "ass", None):
                    made = self.av.subtitles.subtitle.SubtitleSet.create(bytes(text), 0, length, pts=begin)
                    encoded = self.target.codec_context.encode_subtitle(made)
                    encoded.stream, encoded.time_base = self.target, ms
                    encoded.pts = encoded.dts = begin
                    encoded.duration = length
                    out.append(encoded)
        return out
