"""The base install (no extras) must start the CLI: every optional library is imported only by the code
that needs it. Checked in a child process in which importing any extra's package fails."""
import subprocess
import sys
import textwrap

# top-level packages of the extras in pyproject.toml (and what they pull in)
EXTRAS = ("soundfile", "scipy", "sklearn", "statsmodels", "pandas", "vega_datasets", "pycrfsuite", "sacrebleu",
          "jiwer", "espeakng_loader", "mido", "music21", "pretty_midi", "fluidsynth", "fastapi", "starlette",
          "uvicorn", "multipart", "jsonschema", "httpx", "selenium", "onnx", "onnxruntime", "onnxscript", "optuna",
          "sqlalchemy", "pycocoevalcap", "pycocotools", "num2words", "pyworld", "triton")

CHILD = textwrap.dedent("""
    import importlib.abc, sys
    blocked = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: not in the base install)", name=name)
            return None

    sys.meta_path.insert(0, Block())
    from rnnkit.cli import main
    from rnnkit.tasks import TASKS
    for argv in (["--help"], ["train", "--help"], ["demo", "--help"]):
        try:
            main(argv)
        except SystemExit as stop:
            assert stop.code in (0, None), (argv, stop.code)
    print("tasks:", len(TASKS))
""")


def test_the_cli_starts_without_any_extra():
    proc = subprocess.run([sys.executable, "-c", CHILD, ",".join(EXTRAS)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tasks:" in proc.stdout
