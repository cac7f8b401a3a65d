"""Voice translation: English speech in, French speech out, in the speaker's own pitch and vocal-tract depth.

* :mod:`.config` - the bundle's config: each stage's data and size, the time shared out, voice matching;
* :mod:`.bundle` - ``rnnkit train voice-translate``: trains asr, translate, tts (and the direct
  speech-translate model) through the registry and writes a bundle naming their runs;
* :mod:`.cascade` - recognition (or a given transcript), translation, synthesis, voice matching, per stage timed;
* :mod:`.report` - the JSON beside ``out.wav`` and the PNG of pitch contours and spectrograms;
* :mod:`.commands` - ``rnnkit voice-translate``; :mod:`.task` - the registry entry (and ``rnnkit compare``).

The stages are runs of other tasks, reached through the registry only (the task is handed the registry's
lookup and the tts task's ``synthesize`` in its registry line), never by importing their packages.
"""
