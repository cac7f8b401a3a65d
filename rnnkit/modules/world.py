"""WORLD vocoder analysis and re-synthesis (Morise et al. 2016) through ``pyworld``.

    WorldAnalysis = analyze(wave (N,), sample_rate)       # F0 (T,), envelope (T, K), aperiodicity (T, K)
    wave (N',) = resynthesize(analysis)

F0 comes from Harvest (Morise 2017) or, asked for, DIO refined by StoneMask. DIO is ~8x faster (about 30 ms
per 3 s of 16 kHz audio against 250 ms) but misses voicing: on eSpeak NG's held-out voices it marked 1 frame
of 110 of a female "Hello." voiced (Harvest: 58), and two thirds of the voiced frames of Griffin-Lim speech
from the tts task; Harvest marks no frame of white noise voiced. The spectral envelope
from CheapTrick and the band aperiodicity from D4C, all on a frame period of ``frame_ms``.
``K = fft_size // 2 + 1`` frequency bins spanning 0 .. sample_rate / 2.

pyworld 0.3.5's ``__init__`` imports ``pkg_resources`` only to read its own version string, and
setuptools 81 and later no longer ship ``pkg_resources``; :func:`pyworld_module` then loads the
package's compiled extension (which holds every function used here) directly (its ``__name__`` is then
``pyworld.pyworld``). With an older setuptools the import works but ``pkg_resources`` warns that it is
deprecated; that one warning is silenced here. Every user of pyworld (this module, the tts task's WORLD
vocoder in :mod:`rnnkit.modules.vocoder`) goes through :func:`pyworld_module`, so no extra pins setuptools.
"""
from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rnnkit.data.audio import resample

INSTALL_HINT = "pip install 'rnnkit[voice]' or 'rnnkit[tts]' (or pip install pyworld)"
FRAME_MS = 5.0
#: Hz: the F0 search range, bass to child voices. 40 Hz, not 50: a low male voice (median ~70 Hz) dips below
#: 50 Hz at phrase ends, and a 50 Hz floor clipped that tail (its spread read 35% low, docs/voice-translation.md)
F0_FLOOR, F0_CEIL = 40.0, 800.0
#: Hz: the lowest F0 CheapTrick's window is sized for; it sets the FFT size (1024 at 16 kHz). Voiced frames
#: below it are analysed with a window for this F0 (CheapTrick would otherwise fall back to its 500 Hz default),
#: so the envelope keeps its size and cost while the F0 search reaches F0_FLOOR
ENVELOPE_F0_FLOOR = 50.0


def _extension_of(package: str):
    """The compiled ``package.package`` extension module of an installed package, without running its __init__."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} is not installed; {INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"{package}{suffix}"
        if path.is_file():
            loader = importlib.machinery.ExtensionFileLoader(f"{package}.{package}", str(path))
            ext_spec = importlib.util.spec_from_file_location(f"{package}.{package}", str(path), loader=loader)
            module = importlib.util.module_from_spec(ext_spec)
            loader.exec_module(module)
            return module
    raise ImportError(f"{package} has no compiled extension in {folder}; reinstall it: {INSTALL_HINT}")


@functools.lru_cache(maxsize=None)
def pyworld_module():
    """The pyworld functions (dio, stonemask, cheaptrick, d4c, synthesize), imported once."""
    try:
        with warnings.catch_warnings():  # pyworld 0.3.5 reads its version through the deprecated pkg_resources
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            import pyworld
    except ModuleNotFoundError as err:
        if err.name == "pyworld":
            raise ImportError(f"the WORLD vocoder needs pyworld; {INSTALL_HINT}") from err
        if err.name != "pkg_resources":
            raise
        return _extension_of("pyworld")
    return pyworld


@dataclass(frozen=True)
class WorldAnalysis:
    """WORLD parameters of one waveform: ``f0`` (T,) Hz with 0 on unvoiced frames, ``envelope`` (T, K) power
    spectral envelope, ``aperiodicity`` (T, K) in [0, 1] (None when not analysed: a waveform only measured,
    never re-synthesised), at ``sample_rate`` Hz every ``frame_ms``."""
    f0: np.ndarray
    envelope: np.ndarray
    aperiodicity: np.ndarray | None
    sample_rate: int
    frame_ms: float = FRAME_MS

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0                                                    # (T,) bool

    @property
    def frequencies(self) -> np.ndarray:
        """Centre frequency of each envelope bin (K,) in Hz."""
        K = self.envelope.shape[1]
        return np.linspace(0.0, self.sample_rate / 2, K)

    def with_(self, **changes) -> "WorldAnalysis":
        return replace(self, **changes)


F0_METHODS = ("dio", "harvest")
#: who decides which frames are voiced: the F0 tracker alone (the default), or D4C's voicing decision as well
#: (``d4c``: WORLD's LoveTrain, the band-aperiodicity test inside D4C at its default threshold, which sets a frame's
#: aperiodicity to 1 in every band when it finds the frame aperiodic). Harvest carries its contour across short
#: unvoiced stretches (11.7% of the frames it read voiced on eSpeak NG voices re-synthesised on known contours, 3.3%
#: with ``d4c``), frames that hold an F0 glided between the neighbouring syllables; but ``d4c`` also drops 3-8% of
#: truly voiced frames of WORLD-synthesised speech, and on the voice-translation benchmark it moved more medians
#: than it saved spreads (docs/voice-translation.md), so the tracker's voicing stays the default
VOICINGS = ("tracker", "d4c")
D4C_THRESHOLD = 0.85
#: DIO's ``allowed_range`` (WORLD's default 0.1): how far apart the F0 candidates of neighbouring bands may be for a
#: frame to count as voiced
DIO_ALLOWED_RANGE = 0.1


def analyze(wave: np.ndarray, sample_rate: int, frame_ms: float = FRAME_MS,
            f0_floor: float = F0_FLOOR, f0_ceil: float = F0_CEIL, f0_method: str = "harvest",
            aperiodicity: bool = True, f0_rate: int = 0, voicing: str = "tracker") -> WorldAnalysis:
    """WORLD analysis of a mono waveform (N,) in [-1, 1]. F0 by Harvest (default) or DIO + StoneMask, on the
    waveform resampled to ``f0_rate`` Hz when that is given and below ``sample_rate`` (the envelope and the
    aperiodicity always at ``sample_rate``), on the frames ``voicing`` finds voiced (``VOICINGS``; ``d4c``: the
    tracker's voiced frames that D4C's voicing decision finds periodic too); ``aperiodicity=False`` keeps no
    aperiodicity (the analysis cannot be re-synthesised; without ``d4c`` voicing D4C is not run at all, about a
    tenth of the cost)."""
    x = np.ascontiguousarray(np.asarray(wave, dtype=np.float64))
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"analyze needs a non-empty mono waveform (N,), got shape {x.shape}")
    if voicing not in VOICINGS:
        raise ValueError(f"voicing must be one of {VOICINGS}, got {voicing!r}")
    f0 = estimate_f0(x, sample_rate, frame_ms, f0_floor, f0_ceil, f0_method, f0_rate)
    return analyze_with_f0(x, sample_rate, f0, frame_ms, aperiodicity, d4c_voicing=voicing == "d4c")


def estimate_f0(wave: np.ndarray, sample_rate: int, frame_ms: float = FRAME_MS, f0_floor: float = F0_FLOOR,
                f0_ceil: float = F0_CEIL, f0_method: str = "harvest", f0_rate: int = 0) -> np.ndarray:
    """F0 (T,) Hz, 0 on unvoiced frames, of a mono waveform (N,) on WORLD's frames of ``frame_ms``
    (``T = N / sample_rate / frame_ms + 1``). With ``f0_rate`` below ``sample_rate`` it is estimated on the waveform
    resampled to that rate: Harvest's cost is about that of its internal 8 kHz copy, so at 4 kHz it
    costs half, and the harmonics it refines the F0 on stay below the new Nyquist frequency for voices up to
    ~330 Hz (six of them) and beyond (fewer)."""
    w = pyworld_module()
    x = np.ascontiguousarray(np.asarray(wave, dtype=np.float64))
    frames = int(1000 * len(x) / sample_rate / frame_ms) + 1                 # as DIO and Harvest count them
    rate = sample_rate
    if 0 < f0_rate < sample_rate:
        x, rate = np.ascontiguousarray(resample(x, sample_rate, f0_rate), dtype=np.float64), int(f0_rate)
    if f0_method == "dio":
        f0, times = w.dio(x, rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_ms,
                          allowed_range=DIO_ALLOWED_RANGE)
        f0 = w.stonemask(x, f0, times, rate)                                 # (T,)
    elif f0_method == "harvest":
        f0, _ = w.harvest(x, rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_ms)
    else:
        raise ValueError(f"f0_method must be one of {F0_METHODS}, got {f0_method!r}")
    return np.pad(f0, (0, max(0, frames - len(f0))))[:frames]              # (T,) on the full rate's frames


def analyze_with_f0(wave: np.ndarray, sample_rate: int, f0: np.ndarray, frame_ms: float = FRAME_MS,
                    aperiodicity: bool = True, d4c_voicing: bool = False) -> WorldAnalysis:
    """WORLD analysis of a waveform (N,) whose F0 (T,) is known (estimated, or the contour it was synthesised
    on): CheapTrick's envelope and, unless ``aperiodicity=False``, D4C's aperiodicity on frames of ``frame_ms``.
    ``d4c_voicing``: the F0 of the frames D4C finds aperiodic (:func:`d4c_unvoiced`) is set to 0 first."""
    w = pyworld_module()
    x = np.ascontiguousarray(np.asarray(wave, dtype=np.float64))
    f0 = np.ascontiguousarray(np.asarray(f0, dtype=np.float64))
    times = np.arange(len(f0)) * frame_ms / 1000                             # (T,) as DIO and Harvest place them
    fft_size = w.get_cheaptrick_fft_size(sample_rate, ENVELOPE_F0_FLOOR)
    ap = None
    if aperiodicity or d4c_voicing:
        ap = w.d4c(x, f0, times, sample_rate, threshold=D4C_THRESHOLD, fft_size=fft_size)   # (T, K)
    if d4c_voicing:
        f0 = np.where(d4c_unvoiced(ap), 0.0, f0)                             # (T,)
    env_floor = 3.0 * sample_rate / fft_size                                 # CheapTrick's own floor for that size
    f0_env = np.where(f0 > 0, np.maximum(f0, env_floor * 1.001), 0.0)       # (T,)
    envelope = w.cheaptrick(x, f0_env, times, sample_rate, fft_size=fft_size)  # (T, K)
    return WorldAnalysis(f0, envelope, ap if aperiodicity else None, int(sample_rate), frame_ms)


def d4c_unvoiced(aperiodicity: np.ndarray) -> np.ndarray:
    """(T,) bool: the frames D4C's voicing decision found aperiodic (aperiodicity 1 in every band of (T, K))."""
    return np.asarray(aperiodicity).min(axis=1) > 0.999


def resynthesize(a: WorldAnalysis) -> np.ndarray:
    """The waveform (N,) float32 of WORLD parameters."""
    if a.aperiodicity is None:
        raise ValueError("resynthesize needs the aperiodicity: analyse with aperiodicity=True")
    w = pyworld_module()
    wave = w.synthesize(np.ascontiguousarray(a.f0, dtype=np.float64),
                        np.ascontiguousarray(a.envelope, dtype=np.float64),
                        np.ascontiguousarray(a.aperiodicity, dtype=np.float64), a.sample_rate, a.frame_ms)
    return wave.astype(np.float32)
