"""``hwkit evaluate``: a thin click wrapper around ``hwkit.evaluation.evaluate_checkpoint``."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import escape, given, read_lines, stderr_console, stdout_console, threads_option

# options that only a synthesis model's evaluation uses; given for another kind, they are refused
SYNTHESIS_ONLY = ("text_file", "max_texts", "biases", "seeds", "primed", "tries", "reader", "grid")


@click.command()
@click.argument("checkpoint", required=False, type=click.Path(path_type=Path))
@click.option("--store", type=click.Path(dir_okay=False, path_type=Path),
              help="Store to score on [default: the one the checkpoint was trained on].")
@click.option("--text-file", type=click.File("r", encoding="utf-8"),
              help="Synthesis: texts to write, one per line [default: the test split's transcriptions].")
@click.option("--texts", "max_texts", type=click.IntRange(min=1), default=100, show_default=True,
              help="Synthesis: how many test transcriptions to write per bias and seed.")
@click.option("--bias", "biases", type=click.FloatRange(min=0), multiple=True,
              help="Synthesis: sampling bias; repeatable.  [default: 0.5, 1, 2]")
@click.option("--seed", "seeds", type=int, multiple=True, help="Synthesis: random seed; repeatable.  [default: 1]")
@click.option("--primed/--unprimed", default=None,
              help="Synthesis: write each text in a hand chosen by the seed, as sample --style auto does (a house "
                   "hand, else a train line), or unprimed.  [default: as hwkit sample writes with this model]")
@click.option("--tries", type=click.IntRange(min=1),
              help="Synthesis: draws per text, the best kept by the model's own recognizer, as sample --tries.  "
                   "[default: as hwkit sample writes with this model]")
@click.option("--reader", type=click.Path(path_type=Path),
              help="Synthesis: the recognizer that reads the lines back [default: models/reader-<store>/ if "
                   "there is one, else the bundled judge for a demo store, else one trained on the store on "
                   "first use].")
@click.option("--grid", type=click.Path(dir_okay=False, path_type=Path),
              help="Synthesis: PNG of the worst and best lines [default: evaluate-<date>-<time>.png beside the "
                   "checkpoint, or in samples/ for a bundled model].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when present, else CPU.")
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of tables.")
@click.pass_context
def evaluate(ctx: click.Context, checkpoint: Path | None, text_file, biases: tuple[float, ...],
             seeds: tuple[int, ...], grid: Path | None, as_json: bool, **options) -> None:  # fmt: skip
    """Measure how good a model is: loss, and for synthesis whether its writing reads as the text asked for.

    CHECKPOINT is a .pt file or run folder [default: the newest
    models/*/best.pt, else the bundled demo model]. Every model is scored in
    nats per line and per point on the test and valid splits (lower is better);
    a recognizer also by its character error rate (CER). A synthesis model
    writes texts it never saw as training lines at each --bias and --seed; a
    recognizer reads them back, and the report gives, per run, the lines
    stopped by the attention rule or the length cap, the written length
    against the store's writers' length for such a text, and the CER against
    the requested text, beside the reader's own CER on real test lines; where
    the errors are (capitals, digits, lower case, spaces, first words); how
    many lines switch hand and, primed, leave their prime's hand, beside how
    often real test lines do. Several --seed are pooled with 95% intervals;
    hwkit compare pairs two --json reports text by text.

    \b
    Examples:
      hwkit evaluate --store cache/demo.h5 --bias 1 --texts 50
      hwkit evaluate models/mine --reader models/reader --json
      hwkit evaluate --text-file benchmarks/fresh_texts.txt --seed 1 --seed 2 --seed 3
    """
    import json

    from hwkit.evaluation import DEFAULT_BIASES, default_grid, evaluate_checkpoint

    err = stderr_console()
    synthesis_only = given(ctx, SYNTHESIS_ONLY)
    if synthesis_only:  # said before the minutes of loss scoring, not ignored
        from hwkit.checkpoint import Checkpoint, find_checkpoint
        from hwkit.errors import OptionError
        from hwkit.paths import MODELS_DIR

        path = find_checkpoint(checkpoint, MODELS_DIR)
        kind = Checkpoint.load(path).kind
        if kind != "synthesis":
            raise OptionError(synthesis_only[0].lstrip("-").replace("-", "_"),
                              f"only for a synthesis model; {path} is a {kind} model")  # fmt: skip
    texts = read_lines(text_file, "--text-file") if text_file else None
    if texts is not None and not any(t.strip() for t in texts):
        from hwkit.errors import OptionError

        raise OptionError("text_file", f"{text_file.name}: no text in it to write")

    def on_event(event: dict) -> None:  # notes, and the epochs of a reader trained on first use
        if event["event"] == "note":
            err.print(escape(event["text"]))
        elif event["event"] == "valid":
            err.print(f"reader: epoch {event['epoch']:.0f}, valid CER {event['cer']:.1%}")

    report = evaluate_checkpoint(checkpoint, texts=texts, biases=biases or DEFAULT_BIASES, seeds=seeds or (1,),
                                 grid=grid or default_grid(checkpoint), progress=on_event, **options)  # fmt: skip
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _tables(report)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


_POOLED_ROWS = (("CER", "cer", False), ("capitals misread", "capitals", False), ("digits misread", "digits", False),
                ("lower case misread", "lower case", False), ("spaces lost", "spaces", False),
                ("first words exact", "first words", True), ("later words exact", "later words", True))  # fmt: skip


def _interval(share: dict | None, flip: bool) -> str:
    """``6.2% (4.1-9.3%)``; ``flip`` turns a share misread into a share read exactly."""
    if share is None:
        return "-"
    rate, low, high = share["rate"], share["low"], share["high"]
    if flip:
        rate, low, high = 1 - rate, 1 - high, 1 - low
    return f"{rate:.1%} ({low * 100:.1f}-{high * 100:.1f})"


def _misread(row: tuple[str, int, int, str, int]) -> str:
    """``7 11/174 (as T 7)``: a ``cer.most_misread`` row as the report prints it."""
    c, bad, n, as_read, times = row
    reading = "dropped" if not as_read else f"as {as_read!r}" if as_read.isspace() else f"as {as_read}"
    return f"{c} {bad}/{n} ({reading} {times})"


def _pooled_table(w: dict):
    from rich.table import Table

    seeds = ", ".join(map(str, w["pooled"][0]["seeds"]))
    table = Table("", *(f"bias {p['bias']:g}, {p['lines']} lines" for p in w["pooled"]), "real test lines (judge)",
                  title=f"pooled over seeds {seeds}, with 95% intervals (a text's lines as one cluster)",
                  title_justify="left")  # fmt: skip
    for label, key, flip in _POOLED_ROWS:
        table.add_row(label, *(_interval(p[key], flip) for p in w["pooled"]),
                      _interval(w["reader_pooled_on_real_test_lines"][key], flip))  # fmt: skip
    return table


def _tables(r: dict) -> None:
    from rich.table import Table

    from hwkit.cer import most_misread

    out = stdout_console()
    out.print(escape(f"{r['kind']} model {r['checkpoint']} on {r['store']}"))
    last = "CER" if "cer" in r else "nats/line in pen units"
    loss = Table("split", "lines", "nats/line", "nats/point", last, title="loss", title_justify="left")
    for split, s in r["loss"].items():
        extra = f"{r['cer'][split]:.2%}" if "cer" in r else f"{s['pen_nats_per_line']:.1f}"
        loss.add_row(split, f"{s['lines']:,}", f"{s['nats_per_line']:.1f}", f"{s['nats_per_point']:.3f}", extra)
    out.print(loss)
    if "writing" in r:
        w = r["writing"]
        runs = Table("bias", "seed", "lines", "stopped by rule", "hit cap", "length ratio", "CER",
                     title=f"writing {w['texts']} texts it never trained on", title_justify="left")  # fmt: skip
        where = Table("bias", "seed", "caps", "digit", "lower", "space", "first", "later", "switch", "prime",
                      title="characters misread (capitals, digits, lower case, word spaces); words read exactly "
                            "(first of a line, later); lines switching hand; lines in another hand than their "
                            "prime", title_justify="left")  # fmt: skip
        for run in w["runs"]:
            runs.add_row(f"{run['bias']:g}", str(run["seed"]), str(run["lines"]), str(run["stopped_by_rule"]),
                         str(run["hit_cap"]), f"{run['length_ratio_median']:.2f}", f"{run['cer']:.1%}")  # fmt: skip
            e, words, hand, prime = (run["errors"]["error_rate"], run["errors"]["word_accuracy"], run["hand"],
                                     run["prime_hand"])  # fmt: skip
            where.add_row(f"{run['bias']:g}", str(run["seed"]), *(_share(e[k]) for k in e),
                          _share(words["first"]), _share(words["later"]),
                          _share(hand["switch_rate"]) if hand else "-",
                          _share(prime["other_hand_rate"]) if prime else "-")  # fmt: skip
        out.print(runs)
        out.print(where)
        if len(w["runs"]) > len(w["pooled"]):  # several seeds: each bias's runs as one, with intervals
            out.print(_pooled_table(w))
        near = min({run["bias"] for run in w["runs"]}, key=lambda b: abs(b - 1.0))
        worst = most_misread([run["errors"] for run in w["runs"] if run["bias"] == near])
        if worst:
            out.print(escape(f"most misread at bias {near:g} (misread/asked, the reading most often given): "
                             + ", ".join(map(_misread, worst))), soft_wrap=True)  # fmt: skip
        if w.get("real_lines_switch_rate") is not None:
            out.print(f"real test lines judged to switch hand (the level of one hand): {w['real_lines_switch_rate']:.1%}")
        if w.get("real_same_writer_other_hand_rate") is not None:
            out.print(f"two real test lines judged in different hands: {w['real_same_writer_other_hand_rate']:.1%} "
                      f"when one writer wrote both, {w['real_other_writer_other_hand_rate']:.1%} when two did")
        hand = ("house hands" if w["house_hands"] else "train lines") if w["primed"] else "none (unprimed)"
        out.print(escape(f"hand: {hand}; tries per text: {w['tries']}" +
                         (f", chosen by {w['chooser']}" if w["chooser"] else "")))
        if w["judge_chose"]:
            out.print("the judge also chose among the tries: these CERs flatter the model (--reader names another)")
        out.print(escape(f"judged by {w['reader']}: CER {w['reader_cer_on_real_test_lines']:.1%} on real test lines, "
                         f"{w['reader_cer_against_shuffled_texts']:.1%} against shuffled texts (control)"))
        if "grid" in w:
            click.echo(w["grid"])
