"""The tasks rnnkit trains, and the one registry every command finds them through.

:data:`TASKS` maps a task's name (the ``task`` recorded in its checkpoints) to its
:class:`~rnnkit.tasks.task.Task` object. Adding a task = one package under ``rnnkit/tasks/`` and one
line here (see docs/extending.md).
"""
from __future__ import annotations

from pathlib import Path

from rnnkit.config import ConfigError
from rnnkit.tasks.asr.task import ASRTask
from rnnkit.tasks.caption.task import CaptionTask
from rnnkit.tasks.classify.task import ClassifyTask
from rnnkit.tasks.forecast.task import ForecastTask
from rnnkit.tasks.lm.task import LMTask
from rnnkit.tasks.music.task import MusicTask
from rnnkit.tasks.runs import run_task
from rnnkit.tasks.speech_translate.task import SpeechTranslateTask
from rnnkit.tasks.tag.task import TagTask
from rnnkit.tasks.tag_images.task import TagImagesTask
from rnnkit.tasks.task import Command, Task
from rnnkit.tasks.translate.task import TranslateTask
from rnnkit.tasks.tts.pipeline import synthesize as tts_synthesize
from rnnkit.tasks.tts.task import TTSTask
from rnnkit.tasks.voice_translate.task import VoiceTranslateTask

TASKS: dict[str, Task] = {task.name: task for task in (
    LMTask(),
    ClassifyTask(),
    TagTask(),
    ForecastTask(),
    TranslateTask(),
    ASRTask(lm_loader=lambda run: task_of_run(run).load(run)),  # --lm: a run of any task that loads as an LM
    MusicTask(),
    CaptionTask(),
    TagImagesTask(),
    SpeechTranslateTask(),
    # --asr: a speech-recognition run transcribes the synthesised audio (through its own task)
    TTSTask(transcriber=lambda run, wavs: [p["text"] for p in task_of_run(run).predict(run, wavs, {})]),
    # its stages are runs of asr, translate, tts and speech-translate, reached through this table
    VoiceTranslateTask(get_task=lambda name: get_task(name), run_task=lambda run: task_of_run(run),
                       synthesize=tts_synthesize),
)}


def get_task(name: str) -> Task:
    """The registered task called ``name``; an unknown name is a ConfigError listing the known ones."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def task_of_run(run: str | Path) -> Task:
    """The task of a trained run (a run directory or checkpoint file), read from its checkpoint."""
    name = run_task(run)
    if name not in TASKS:
        raise ConfigError(f"{run}: its checkpoint records task {name!r}, which this rnnkit does not know "
                          f"(tasks: {', '.join(TASKS)})")
    return TASKS[name]


__all__ = ["TASKS", "Task", "Command", "get_task", "task_of_run"]
