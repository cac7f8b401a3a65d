"""Translation task end to end: the dates task learns, the CLI trains / translates / evaluates /
resumes, the embedded phrase book is well formed."""
import json
import time

import pytest
import torch

from rnnkit.cli import main
from rnnkit.config import from_dict, load_yaml
from rnnkit.tasks.translate.config import TranslateRunConfig
from rnnkit.train.checkpoint import read_meta
from rnnkit.tasks.translate.data import parse_tsv
from rnnkit.tasks.translate.translator import Translator
from rnnkit.tasks.translate.pipeline import dates_config, phrasebook_text, train_translate


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.slow
def test_dates_task_reaches_95_percent_exact_match(tmp_path, one_thread):
    cfg = dates_config(epochs=2)
    t0 = time.perf_counter()
    result, scores = train_translate(cfg, tmp_path / "dates", log=lambda *a: None)
    elapsed = time.perf_counter() - t0
    assert scores["exact"] >= 0.95, (scores["exact"], scores["hypotheses"][:5])
    assert scores["n"] >= 200
    print(f"dates: exact match {scores['exact']:.3f} on {scores['n']} held-out dates in {elapsed:.1f} s "
          f"({result.steps} updates)")
    tr = Translator.load(tmp_path / "dates")
    [[hyp]] = tr.translate(["3rd of March 2021"], beam=1)
    assert hyp.text == "2021-03-03"


TINY = ["Hello.\tBonjour.", "Thank you.\tMerci.", "Good night.\tBonne nuit.", "I am cold.\tJ'ai froid.",
        "I am hot.\tJ'ai chaud.", "See you tomorrow.\tÀ demain.", "Yes.\tOui.", "No.\tNon.",
        "I am hungry.\tJ'ai faim.", "Good morning.\tBonjour.", "Goodbye.\tAu revoir.", "Please.\tS'il vous plaît."]
TINY_FLAGS = ["--embedding", "16", "--hidden", "16", "--encoder-layers", "1", "--decoder-layers", "1",
              "--epochs", "2", "--batch-size", "4", "--val-fraction", "0.2", "--test-fraction", "0.2",
              "--progress", "none", "--tensorboard", "off", "--beam", "3", "--dropout", "0"]


@pytest.mark.parametrize("tokenizer,attention", [("word", "bahdanau"), ("bpe", "general"), ("unigram", "dot"),
                                                 ("char", "none")])
def test_cli_train_translate_evaluate_resume(tmp_path, capsys, one_thread, tokenizer, attention):
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(TINY * 3) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    extra = ["--no-input-feed"] if attention == "none" else []
    assert main(["train", "translate", "--data", str(data), "--out", str(run), "--tokenizer", tokenizer,
                 "--vocab-size", "60", "--attention", attention, *extra, *TINY_FLAGS]) == 0
    out = capsys.readouterr().out
    assert "BLEU" in out and "chrF" in out
    for name in ("checkpoints/best.safetensors", "checkpoints/last.safetensors", "data/test.tsv",
                 "eval/test.hyp.txt", "eval/test_scores.json", "metrics.jsonl", "config.yaml", "result.json"):
        assert (run / name).is_file(), name
    # config.yaml and result.json as the other tasks write them
    saved = from_dict(TranslateRunConfig, load_yaml(run / "config.yaml"))
    assert saved == from_dict(TranslateRunConfig, read_meta(run / "checkpoints" / "last.safetensors")["config"])
    assert saved.data.tokenizer == tokenizer and saved.model.attention == attention
    result = json.loads((run / "result.json").read_text())
    assert {"stopped", "steps", "elapsed_s", "parameters", "train", "val", "test", "val_loss",
            "test_bleu", "test_chrf"} <= set(result) and result["steps"] > 0
    # the same run directory is refused without --resume, continued with it
    assert main(["train", "translate", "--data", str(data), "--out", str(run)]) == 2
    assert main(["train", "translate", "--out", str(run), "--resume", "--epochs", "3"]) == 0
    capsys.readouterr()
    assert main(["translate", str(run), "I am cold.", "Hello.", "--beam", "3", "--nbest", "2", "--json"]
                + (["--attention-png", str(tmp_path / "a.png")] if attention != "none" else [])) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["source"] for x in lines] == ["I am cold.", "Hello."]
    assert all(len(x["translations"]) == 2 for x in lines)
    if attention != "none":
        assert (tmp_path / "a.png").stat().st_size > 1000
    assert main(["evaluate", str(run), "--data", str(data), "--beam", "1", "--json",
                 "--hyp-out", str(tmp_path / "hyp.txt")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == len(TINY) * 3 and 0 <= scores["bleu"] <= 100 and 0 <= scores["chrf"] <= 100
    assert len((tmp_path / "hyp.txt").read_text(encoding="utf-8").splitlines()) == len(TINY) * 3


def test_cli_reports_bad_tsv_lines(tmp_path, capsys):
    data = tmp_path / "bad.tsv"
    data.write_text("Hello.\tBonjour.\nbroken line\nYes.\tOui.\n", encoding="utf-8")
    assert main(["train", "translate", "--data", str(data), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "the flag --bad-lines skip" in err and "bad_lines: skip under data:" in err


def test_cli_help():
    for argv in (["train", "translate", "--help"], ["translate", "--help"], ["evaluate", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0


def test_phrasebook_is_well_formed():
    pairs = parse_tsv(phrasebook_text(), "phrasebook")                    # raises on any bad line
    assert len(pairs) >= 300
    assert len({(p.source, p.target) for p in pairs}) == len(pairs)       # no duplicate pairs
    for p in pairs:
        assert p.source[-1] in ".?!" and p.target[-1] in ".?!", p
        assert p.source != p.target or p.source in ("Taxi!", "Stop!"), p


def test_tokenizers_are_fitted_on_the_training_split_only():
    from rnnkit.tasks.translate.config import PairDataConfig
    from rnnkit.tasks.translate.data import Pair
    from rnnkit.tasks.translate.pipeline import prepare_data
    pairs = [Pair(f"word{i} common", f"mot{i} commun") for i in range(40)]
    d = PairDataConfig(tokenizer="word", val_fraction=0.25, test_fraction=0.25)
    data = prepare_data(pairs, d, batch_size=8)
    src = data.src_vocab.tokenizer.tokens
    assert all(p.source.split()[0] in src for p in data.train)
    assert not any(p.source.split()[0] in src for p in data.val + data.test)
    assert len(data.val) == 10 and len(data.test) == 10


def test_max_words_filters_before_the_split(tmp_path):
    from rnnkit.tasks.translate.config import PairDataConfig
    from rnnkit.tasks.translate.pipeline import load_pairs
    data = tmp_path / "p.tsv"
    data.write_text("One two three.\tUn deux trois.\nOne two.\tUn deux.\nOne.\tUn deux trois quatre.\n",
                    encoding="utf-8")
    pairs, _ = load_pairs(PairDataConfig(data=str(data), max_words=3))
    assert [p.source for p in pairs] == ["One two three.", "One two."]


def test_budget_profile_fills_only_what_the_user_left_unset():
    from rnnkit.tasks.translate.config import CPU_BUDGET_PROFILE, budget_profile
    cfg = TranslateRunConfig()
    cfg.train.max_time = 900.0
    short = budget_profile(cfg, frozenset({("model", "cell"), ("train", "lr")}))
    assert short.model.cell == "lstm" and short.train.lr == cfg.train.lr              # given: kept
    assert short.model.hidden == CPU_BUDGET_PROFILE["model"]["hidden"]
    assert (short.model.encoder_layers, short.model.input_feed, short.train.eval_every) == (1, False, 300)
    assert short.data.tokenizer == "bpe" and short.model.embedding_init == "scaled"
    assert short.train.precision == "fp32" and budget_profile(cfg, bf16=True).train.precision == "bf16"
    assert budget_profile(cfg, frozenset({("train", "precision")}), bf16=True).train.precision == "fp32"
    assert budget_profile(cfg, on_cpu=False) == cfg                                   # a GPU run: untouched
    for seconds in (0.0, 7200.0):                                                     # no budget, a long one
        cfg.train.max_time = seconds
        assert budget_profile(cfg) == cfg


def test_scaled_embedding_init():
    from rnnkit.tasks.translate.config import Seq2SeqModelConfig
    from rnnkit.tasks.translate.model import Seq2SeqModel
    torch.manual_seed(0)
    unit = Seq2SeqModel(Seq2SeqModelConfig(embedding=64, hidden=8), 500, 500)
    scaled = Seq2SeqModel(Seq2SeqModelConfig(embedding=64, hidden=8, embedding_init="scaled"), 500, 500)
    assert 0.9 < float(unit.tgt_embedding.weight[1:].std()) < 1.1
    for emb in (scaled.src_embedding, scaled.tgt_embedding):
        assert 0.11 < float(emb.weight[1:].std()) < 0.14 and not emb.weight[0].any()  # 1/sqrt(64); <pad> zero
    assert scaled.generator.weight is scaled.tgt_embedding.weight


def test_short_cpu_run_averages_checkpoints_and_scores_greedy_and_beam(tmp_path, capsys):
    from rnnkit.train import load_checkpoint
    from rnnkit.train.averaging import average_checkpoints, eval_checkpoints
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(TINY * 3) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "translate", "--data", str(data), "--out", str(run), "--max-time", "600",
                 "--eval-every", "2", "--average", "3", "--vocab-size", "60", "--device", "cpu", *TINY_FLAGS]) == 0
    out = capsys.readouterr().out
    assert "test (beam 3): BLEU" in out and "test (greedy): BLEU" in out and "average of the last 3" in out
    saved = from_dict(TranslateRunConfig, load_yaml(run / "config.yaml"))
    assert saved.model.cell == "gru" and saved.model.input_feed is False          # the short-budget profile
    assert saved.model.hidden == 16 and saved.train.eval_every == 2               # the user's flags
    assert saved.data.tokenizer == "bpe" and saved.model.embedding_init == "scaled"
    result = json.loads((run / "result.json").read_text())
    assert {"test_bleu", "test_chrf", "test_greedy_bleu", "test_greedy_chrf"} <= set(result)
    paths = eval_checkpoints(run)
    assert len(paths) == 3 and result["averaged"]["checkpoints"] == [p.name for p in paths]
    best = load_checkpoint(run / "checkpoints" / "best.safetensors")
    mean = average_checkpoints(paths).group("model")
    same = all(torch.equal(best.group("model")[k], v) for k, v in mean.items())
    assert same == result["averaged"]["used"] == ("averaged" in best.meta)


@pytest.mark.parametrize("better", [True, False])
def test_the_average_replaces_the_best_checkpoint_only_when_it_scores_better(tmp_path, better):
    from rnnkit.tasks.translate.pipeline import average_into_best
    from rnnkit.train import ListData, Trainer, load_checkpoint
    from rnnkit.train.averaging import KeepLastWeights, average_checkpoints, eval_checkpoints
    from rnnkit.tasks.translate.data import EncodedPair, make_batches
    from rnnkit.tasks.translate.model import Seq2SeqMeter, Seq2SeqModel
    from rnnkit.modules.search import SpecialIds
    cfg = TranslateRunConfig()
    cfg.model.embedding = cfg.model.hidden = 8
    cfg.train.eval_every, cfg.train.epochs, cfg.train.progress, cfg.train.tensorboard = 1, 1, "none", "off"
    pairs = [EncodedPair([4 + i % 5, 5], [6 + i % 3]) for i in range(12)]
    batches = make_batches(pairs, 4, SpecialIds(0, 1, 2))
    trainer = Trainer(Seq2SeqModel(cfg.model, 10, 10), cfg.train, run_dir=tmp_path, meter=Seq2SeqMeter,
                      callbacks=[KeepLastWeights(3)])
    result = trainer.fit(ListData(batches), ListData(batches))
    before = load_checkpoint(tmp_path / "checkpoints" / "best.safetensors").group("model")
    result.best = float("inf") if better else float("-inf")  # any average is better / worse than this
    summary = average_into_best(trainer, ListData(batches), result, log=lambda *a: None)
    after = load_checkpoint(tmp_path / "checkpoints" / "best.safetensors").group("model")
    expected = average_checkpoints(eval_checkpoints(tmp_path)).group("model") if better else before
    assert summary["used"] is better and len(summary["checkpoints"]) == 3
    for key, value in expected.items():
        assert torch.equal(after[key], value), key


def test_aligned_files_split_lines_at_newlines_only(tmp_path):
    """A U+2028 or U+0085 inside a sentence is not a line break: str.splitlines() would have cut the line and
    shifted every later pair out of alignment (or refused the files for unequal line counts)."""
    from rnnkit.tasks.translate.data import read_parallel
    src, tgt = tmp_path / "a.en", tmp_path / "a.de"
    src.write_text("one\u2028still one\ntwo\r\n", encoding="utf-8")
    tgt.write_text("eins\u0085noch eins\nzwei\n", encoding="utf-8")
    pairs = read_parallel(src, tgt)
    assert [(p.source, p.target) for p in pairs] == [("one\u2028still one", "eins\u0085noch eins"), ("two", "zwei")]
