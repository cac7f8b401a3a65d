"""Voice matching: give synthesised speech a speaker's pitch and vocal-tract depth (WORLD parameters).

    stats = f0_stats(analysis.f0)                     # F0Stats: median (Hz and semitones), spread (semitones)
    f0' = map_f0(f0, target=stats_b)                  # voiced frames moved onto the target's statistics
    alpha = estimate_warp(reference, other)           # other's envelope ~ reference's warped by alpha
    envelope' = warp_envelope(envelope, alpha)        # alpha 1.0 is the identity
    wave' = match_loudness(wave, reference_wave)
    matched = match_voice(synth_wave, speaker_wave, sample_rate)   # all of it, with the numbers
    wave, f0 = revoice(analysis, target_stats, alpha)  # the re-synthesis alone, onto given numbers

**Pitch.** F0 is read in semitones, ``st = 69 + 12 log2(f / 440)`` (the MIDI note number), on voiced frames
only. The median is the level; the spread is the median absolute deviation around it times 1.4826 (the
standard deviation for a normal distribution, robust to the odd octave error of an F0 tracker). Mapping is
a soft-limited scaling in semitones around the medians (:func:`map_f0`), one monotone function of the contour.

**Depth.** A longer vocal tract lowers every formant by the same factor, so two voices' spectral envelopes
differ, to first order, by a warping of the frequency axis ``E_b(f) ~ E_a(f / alpha)`` (vocal tract length
normalisation, Lee & Rose 1998; Eide & Gish 1996). :func:`estimate_warp` averages each voice's log envelope
over its voiced frames and searches ``alpha`` on a fine geometric grid (``WARP_RANGE``, 0.1% steps),
scoring the squared difference of the mean-removed log envelopes between ``BAND`` Hz; the best grid point
is refined by a parabola through its neighbours. Averaging over an utterance leaves the speaker's formant
scale and mostly averages the phonetic content out; it needs a second or more of voiced speech to be stable.

F0 comes from Harvest (see :mod:`rnnkit.modules.world` for why not DIO); on a synthesiser's Griffin-Lim
speech, WORLD's re-synthesis on the mapped F0 also makes clean periodic excitation of it.

**Loudness.** The RMS over active frames (within ``ACTIVE_DB`` of the loudest 20 ms frame), so pauses do
not count; the gain is lowered when it would push the peak over ``PEAK_LIMIT`` (reported).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rnnkit.data.readers import DataError
from rnnkit.modules.world import WorldAnalysis, analyze, resynthesize

WARP_RANGE = (0.7, 1.45)     # searched factors: about +-30% of vocal tract length
WARP_STEP = 0.001            # log-spaced grid step (0.1%)
BAND = (150.0, 5000.0)       # Hz: where formants carry the vocal tract's length
ACTIVE_DB = 40.0             # frames within this of the loudest count for loudness
PEAK_LIMIT = 0.99
SILENCE_PEAK = 1e-4          # as rnnkit.data.audio: below this the waveform is silence
MIN_VOICED_S = 0.1           # seconds of voiced frames below which a recording holds no speech
MIN_VOICED_SHARE = 0.15      # share of the active frames that must be voiced
MIN_PAUSE_S = 0.1            # a pause to split long audio at lasts at least this
OCTAVE_FOLD_ST = 7.0         # semitones from the median beyond which an F0 value is taken for an octave error
MAP_LIMIT_ST = 6.0           # a mapped F0 contour stays within this of the target median (soft limit)
#: aperiodicity of the re-synthesised voiced frames is capped at this: moved down to 50-60 Hz, frames with the
#: synthesiser's own (breathier) aperiodicity came out too noisy to read as voiced, which narrowed a low voice's
#: pitch spread (15 of 20 within 25% of the speaker's before the cap, 19 of 20 with it)
VOICED_APERIODICITY = 0.3


class VoiceError(DataError):
    """Audio that voice matching cannot use (silence, noise only, no pause to split at)."""


# ----------------------------------------------------------------------- pitch

def hz_to_semitones(f: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.asarray(f, dtype=np.float64) / 440.0)


def semitones_to_hz(st: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(st, dtype=np.float64) - 69.0) / 12.0)


@dataclass(frozen=True)
class F0Stats:
    median_hz: float
    median_semitones: float     # MIDI note number of the median
    spread_semitones: float     # robust standard deviation (1.4826 MAD) in semitones
    voiced_frames: int

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def fold_octaves(st: np.ndarray) -> np.ndarray:
    """Semitone values (N,) with octave errors undone: a value more than OCTAVE_FOLD_ST from the median is moved
    by whole octaves (12 st) to the nearest it can come to the median. F0 trackers halve or double the pitch of
    creaky or breathy frames (Harvest read 20-40% of some held-out eSpeak voices' frames an octave low); speech
    itself rarely strays more than half an octave from its median."""
    st = np.asarray(st, dtype=np.float64)
    if st.size == 0:
        return st
    d = st - np.median(st)
    far = np.abs(d) > OCTAVE_FOLD_ST
    return np.where(far, st - 12.0 * np.round(d / 12.0), st)


def f0_stats(f0: np.ndarray, what: str = "audio") -> F0Stats:
    """Statistics of the voiced frames (``f0 > 0``) of an F0 contour (T,), octave errors folded back
    (:func:`fold_octaves`); none voiced is a VoiceError."""
    voiced = np.asarray(f0)[np.asarray(f0) > 0]
    if voiced.size == 0:
        raise VoiceError(f"{what}: no voiced frame (no pitch found); expected speech")
    st = fold_octaves(hz_to_semitones(voiced))
    med = float(np.median(st))
    spread = float(1.4826 * np.median(np.abs(st - med)))
    return F0Stats(float(semitones_to_hz(med)), med, spread, int(voiced.size))


def voiced_runs(voiced: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end), ...]``: the runs of consecutive True frames of a voicing mask (T,), end exclusive."""
    v = np.concatenate([[False], np.asarray(voiced, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(v.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def fold_octave_runs(f0: np.ndarray) -> np.ndarray:
    """Semitones (V,) of the voiced frames of an F0 contour (T,), each voiced run moved as a whole by whole octaves
    towards the contour's median when the run's median is more than OCTAVE_FOLD_ST from it. Within a run the
    contour stays as it was: a tracker's reading can glide continuously more than OCTAVE_FOLD_ST away from the
    median (a voiced consonant, an onset), and folding it frame by frame (:func:`fold_octaves`, right for
    statistics) would cut that glide into a 12-semitone jump, which a contour to synthesise must not have."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = f0 > 0
    st = hz_to_semitones(np.where(voiced, f0, 1.0))                         # (T,), read on voiced frames only
    centre = float(np.median(fold_octaves(st[voiced]))) if voiced.any() else 0.0
    for a, b in voiced_runs(voiced):
        off = float(np.median(st[a:b])) - centre
        if abs(off) > OCTAVE_FOLD_ST:
            st[a:b] -= 12.0 * np.round(off / 12.0)
    return st[voiced]


def map_f0(f0: np.ndarray, target: F0Stats) -> np.ndarray:
    """F0 contour (T,) whose voiced frames follow ``target``'s statistics; unvoiced frames stay 0. A flat contour
    (spread 0) is shifted only.

    The voiced frames are read in semitones with whole runs read an octave off folded back
    (:func:`fold_octave_runs`); each frame's distance ``d`` from their median becomes ``L tanh(k d / L)`` around the
    target median (``L = MAP_LIMIT_ST``): close to affine near the median, never further than ``L`` from it. A
    synthesiser's flat contour scaled up 3-5x onto an expressive speaker otherwise throws its tails an octave out,
    below the F0 floor (read as unvoiced) or into octave errors. The map is one monotone function of the contour,
    so a continuous contour stays continuous; ``tanh`` is odd, so the median and the median absolute deviation map
    exactly: ``k`` is chosen so that the output's spread is the target's (a target spread is capped at 90% of
    ``L``), and the output, within ``L`` of its median, reads back the same through :func:`f0_stats`."""
    f0 = np.asarray(f0, dtype=np.float64)
    out = np.zeros_like(f0)
    voiced = f0 > 0
    if not voiced.any():
        return out
    st = fold_octave_runs(f0)                                                # (V,)
    d = st - np.median(st)
    mad_s = float(np.median(np.abs(d)))
    if mad_s > 1e-6:
        mad_t = min(target.spread_semitones / 1.4826, 0.9 * MAP_LIMIT_ST)
        k = MAP_LIMIT_ST * np.arctanh(mad_t / MAP_LIMIT_ST) / mad_s
        d = MAP_LIMIT_ST * np.tanh(k * d / MAP_LIMIT_ST)
    out[voiced] = semitones_to_hz(target.median_semitones + d)
    return out


# ----------------------------------------------------------------------- depth

def warp_envelope(envelope: np.ndarray, alpha: float) -> np.ndarray:
    """Envelope (T, K) or (K,) with its frequency axis scaled by ``alpha``: ``E'(f) = E(f / alpha)``
    (alpha > 1 raises formants: a shorter vocal tract). Interpolated linearly in the log domain over the bins;
    beyond the top bin the last value holds. ``alpha = 1`` returns the same values."""
    env = np.asarray(envelope, dtype=np.float64)
    return np.exp(warp_log(np.log(np.maximum(env, 1e-300)), alpha))


def warp_log(log_envelope: np.ndarray, alpha: float) -> np.ndarray:
    """:func:`warp_envelope` on a log envelope (T, K) or (K,)."""
    if not alpha > 0:
        raise ValueError(f"warping factor must be > 0, got {alpha}")
    log = np.asarray(log_envelope, dtype=np.float64)
    K = log.shape[-1]
    bins = np.arange(K, dtype=np.float64)
    src = bins / alpha                                                       # (K,) where each bin reads from
    rows = log.reshape(-1, K)                                                # (T, K)
    return np.stack([np.interp(src, bins, row) for row in rows]).reshape(log.shape)


def mean_log_envelope(a: WorldAnalysis) -> np.ndarray:
    """The log envelope (K,) averaged over voiced frames (all frames when none is voiced)."""
    frames = a.envelope[a.voiced] if a.voiced.any() else a.envelope
    return np.log(np.maximum(frames, 1e-300)).mean(axis=0)


def warp_grid(low: float = WARP_RANGE[0], high: float = WARP_RANGE[1], step: float = WARP_STEP) -> np.ndarray:
    n = int(np.ceil(np.log(high / low) / np.log1p(step))) + 1
    return low * (1.0 + step) ** np.arange(n)


def estimate_warp(reference: WorldAnalysis, other: WorldAnalysis, band: tuple[float, float] = BAND) -> float:
    """The factor ``alpha`` with ``other``'s average envelope closest to ``reference``'s warped by ``alpha``."""
    if reference.envelope.shape[1] != other.envelope.shape[1] or reference.sample_rate != other.sample_rate:
        raise ValueError("estimate_warp needs analyses at the same sample rate and FFT size")
    ref, oth = mean_log_envelope(reference), mean_log_envelope(other)        # (K,)
    freqs = reference.frequencies
    inside = (freqs >= band[0]) & (freqs <= min(band[1], 0.95 * reference.sample_rate / 2))
    grid = warp_grid()
    # both directions on one grid: reference warped by alpha against other, and other warped by 1 / alpha
    # against reference. One direction alone has spurious minima (a third of the high held-out voices' outputs
    # read 1.3-1.45 one way and 1.00 the other); their sum does not.
    errors = _warp_errors(ref, oth, grid, inside) + _warp_errors(oth, ref, 1.0 / grid, inside)
    best = int(np.argmin(errors))
    if 0 < best < len(grid) - 1:                                             # parabola through the neighbours
        e0, e1, e2 = errors[best - 1: best + 2]
        denom = e0 - 2 * e1 + e2
        offset = 0.5 * (e0 - e2) / denom if denom > 0 else 0.0
        return float(grid[best] * (1.0 + WARP_STEP) ** offset)
    return float(grid[best])


def _warp_errors(source: np.ndarray, target: np.ndarray, alphas: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Mean squared difference (len(alphas),) over the ``inside`` bins between ``source`` warped by each alpha and
    ``target``, both log envelopes (K,) with their means over those bins removed."""
    t = target[inside] - target[inside].mean()                               # (I,)
    reads = np.flatnonzero(inside)[None, :] / np.asarray(alphas, dtype=np.float64)[:, None]   # (A, I) as warp_log
    w = np.interp(reads, np.arange(len(source), dtype=np.float64), source)  # (A, I): warp_log's rows, all alphas
    w -= w.mean(axis=1, keepdims=True)
    return np.mean((w - t) ** 2, axis=1)                                     # (A,)


# -------------------------------------------------------------------- loudness

def frame_rms(wave: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> np.ndarray:
    """RMS of consecutive frames (F,) of ``frame_s`` seconds (the last partial frame dropped unless alone)."""
    x = np.asarray(wave, dtype=np.float64)
    n = max(1, int(frame_s * sample_rate))
    frames = max(1, len(x) // n)
    x = np.pad(x, (0, max(0, frames * n - len(x))))[: frames * n]
    return np.sqrt(np.mean(x.reshape(frames, n) ** 2, axis=1))


def active_rms(wave: np.ndarray, sample_rate: int) -> float:
    """RMS over the frames within ACTIVE_DB of the loudest (pauses left out)."""
    rms = frame_rms(wave, sample_rate)
    active = rms >= rms.max() * 10 ** (-ACTIVE_DB / 20)
    return float(np.sqrt(np.mean(rms[active] ** 2)))


@dataclass(frozen=True)
class Loudness:
    gain: float          # applied factor
    limited: bool        # the gain was lowered to keep the peak at PEAK_LIMIT


def match_loudness(wave: np.ndarray, reference: np.ndarray, sample_rate: int) -> tuple[np.ndarray, Loudness]:
    """``wave`` scaled to ``reference``'s active RMS (peak kept at PEAK_LIMIT at most)."""
    level = active_rms(wave, sample_rate)
    if level <= 0:
        raise VoiceError("the waveform to scale is silent")
    gain = active_rms(reference, sample_rate) / level
    peak = float(np.abs(wave).max()) * gain
    limited = peak > PEAK_LIMIT
    if limited:
        gain *= PEAK_LIMIT / peak
    return (np.asarray(wave, dtype=np.float32) * np.float32(gain)), Loudness(float(gain), bool(limited))


# ---------------------------------------------------------------- bad input

def check_speech(wave: np.ndarray, sample_rate: int, what: str = "audio",
                 analysis: WorldAnalysis | None = None, f0_rate: int = 0) -> WorldAnalysis:
    """The WORLD analysis of ``wave`` (F0, estimated at ``f0_rate`` when given, and envelope; no aperiodicity),
    after checking it holds speech: silence (peak below SILENCE_PEAK) and noise only (under MIN_VOICED_S seconds,
    or under MIN_VOICED_SHARE of the active frames, voiced by Harvest: none of white noise, 8% of brown noise, half
    or more of speech) are a VoiceError naming ``what``."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size == 0 or float(np.abs(wave).max()) < SILENCE_PEAK:
        raise VoiceError(f"{what}: the audio is silent (peak below {SILENCE_PEAK}); expected speech")
    a = analysis if analysis is not None else analyze(wave, sample_rate, aperiodicity=False, f0_rate=f0_rate)
    voiced = int(a.voiced.sum())
    voiced_s = voiced * a.frame_ms / 1000
    rms = frame_rms(wave, sample_rate, a.frame_ms / 1000)
    active = int((rms >= rms.max() * 10 ** (-ACTIVE_DB / 20)).sum())
    share = voiced / max(active, 1)
    if voiced_s < MIN_VOICED_S or share < MIN_VOICED_SHARE:
        raise VoiceError(f"{what}: no voiced speech found ({voiced_s:.2f} s voiced, {100 * share:.0f}% of the "
                         f"active frames; noise only?); expected someone speaking")
    return a


def split_at_pauses(wave: np.ndarray, sample_rate: int, max_seconds: float, min_seconds: float | None = None,
                    what: str = "audio") -> list[tuple[int, int]]:
    """Sample ranges ``[(start, end), ...]`` covering the whole of ``wave``, each at most ``max_seconds``
    long, cut in the middle of the last pause (a run of at least MIN_PAUSE_S of 20 ms frames ACTIVE_DB below
    the loudest; else the longest such run) between ``min_seconds`` (default half of the limit) and the limit
    after the previous cut. A stretch with no quiet frame is a VoiceError (nothing is cut silently)."""
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    min_seconds = max_seconds / 2 if min_seconds is None else min_seconds
    n = len(wave)
    limit = int(max_seconds * sample_rate)
    if n <= limit:
        return [(0, n)]
    frame = int(0.02 * sample_rate)
    rms = frame_rms(wave, sample_rate)                                       # (F,) 20 ms frames
    quiet = rms.max() * 10 ** (-ACTIVE_DB / 20)
    cuts, start = [], 0
    while n - start > limit:
        lo, hi = (start + int(min_seconds * sample_rate)) // frame, (start + limit) // frame
        window = rms[lo:hi]
        if window.size == 0 or window.min() > quiet:
            raise VoiceError(f"{what}: no pause between {lo * frame / sample_rate:.1f} s and "
                             f"{hi * frame / sample_rate:.1f} s to split the {n / sample_rate:.1f} s recording "
                             f"at (limit {max_seconds:g} s per piece); raise the limit or add pauses")
        cut = (lo + _pause_centre(window <= quiet)) * frame + frame // 2
        cuts.append((start, cut))
        start = cut
    return cuts + [(start, n)]


def _pause_centre(quiet: np.ndarray) -> int:
    """Index of the middle of the last run of True at least MIN_PAUSE_S long (else of the longest run)."""
    runs, start = [], None
    for i, q in enumerate(list(quiet) + [False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            runs.append((start, i))
            start = None
    long_enough = [r for r in runs if (r[1] - r[0]) * 0.02 >= MIN_PAUSE_S]
    a, b = long_enough[-1] if long_enough else max(runs, key=lambda r: r[1] - r[0])
    return (a + b - 1) // 2


# ------------------------------------------------------------------- matching

@dataclass
class VoiceMatch:
    """A synthesised utterance re-voiced onto a speaker, with what was measured."""
    wave: np.ndarray             # (N,) float32 at sample_rate
    sample_rate: int
    speaker: F0Stats             # the input speaker's F0 statistics
    synthesised: F0Stats         # the synthesiser's, before mapping
    warp: float                  # the speaker's envelope ~ the synthesiser's warped by this
    loudness: Loudness
    f0: np.ndarray               # (T,) Hz, 0 unvoiced: the contour the output was synthesised on

    def report(self) -> dict:
        return {"input_f0": self.speaker.to_dict(), "synth_f0": self.synthesised.to_dict(),
                "warp": round(self.warp, 4), "gain": round(self.loudness.gain, 4), "limited": self.loudness.limited}


def match_voice(synth: np.ndarray, speaker: np.ndarray, sample_rate: int, *,
                speaker_analysis: WorldAnalysis | None = None, warp: bool = True,
                synth_f0: str = "harvest", synth_f0_rate: int = 0) -> VoiceMatch:
    """``synth`` re-synthesised by WORLD with its F0 mapped onto ``speaker``'s statistics, its envelope warped by
    the factor estimated between the two voices (``warp=False``: not warped) and its loudness matched.
    ``synth_f0``: the F0 estimator of the synthesised speech (``analyze``'s ``f0_method``; the speaker's analysis
    is Harvest's unless handed in) and ``synth_f0_rate`` the rate it works at (``analyze``'s ``f0_rate``; 0 = the
    waveform's own)."""
    spk = speaker_analysis if speaker_analysis is not None else check_speech(speaker, sample_rate, "input audio")
    if float(np.abs(synth).max()) < SILENCE_PEAK:
        raise VoiceError("synthesised audio: silent; the synthesiser produced no speech")
    syn = analyze(synth, sample_rate, f0_method=synth_f0, f0_rate=synth_f0_rate)
    spk_stats, syn_stats = f0_stats(spk.f0, "input audio"), f0_stats(syn.f0, "synthesised audio")
    alpha = estimate_warp(syn, spk) if warp else 1.0
    revoiced, f0 = revoice(syn, spk_stats, alpha)
    wave, loud = match_loudness(revoiced, speaker, sample_rate)
    return VoiceMatch(wave, sample_rate, spk_stats, syn_stats, alpha, loud, f0)


def revoice(a: WorldAnalysis, target: F0Stats, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(wave (N,), f0 (T,))``: WORLD re-synthesis of analysed speech with its F0 mapped onto ``target``'s
    statistics (:func:`map_f0`), its envelope warped by ``alpha`` (:func:`warp_envelope`) and the
    aperiodicity of its voiced frames capped at VOICED_APERIODICITY; ``f0`` is the contour it was synthesised on.
    Loudness is left as WORLD makes it."""
    f0 = map_f0(a.f0, target)
    aperiodicity = np.where((f0 > 0)[:, None], np.minimum(a.aperiodicity, VOICED_APERIODICITY), a.aperiodicity)
    out = a.with_(f0=f0, envelope=warp_envelope(a.envelope, alpha), aperiodicity=aperiodicity)
    return resynthesize(out), f0
