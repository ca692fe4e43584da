"""The ``culturealign`` command. Each command is a thin call into a public function of ``culturealign.api``.

This is the one place that turns a :class:`UserError` into a one-line message and exit status 2.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from culturealign.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Culturally align LLMs end to end.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate a model (WVS alignment).")
app.add_typer(eval_app, name="eval")
# Tables printed to a file or a pipe (logs, CI) keep their columns: rich would squeeze them to 80 characters.
console = Console() if sys.stdout.isatty() else Console(width=160)
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not verbose:
        from culturealign.progress import quiet_third_party

        quiet_third_party()


Model = Annotated[
    str, typer.Option(help="Model: 'smollm2', a folder, a .gguf file, a hub id, or a server's model name.")
]
Engine = Annotated[
    str,
    typer.Option(
        help="Engine: local (transformers, in process), openai (an OpenAI-compatible server) or llamacpp "
        "(a .gguf file in process; the llamacpp extra)."
    ),
]
BatchSize = Annotated[int, typer.Option(min=1, help="Prompts the model sees at once.")]
BaseUrl = Annotated[str | None, typer.Option(help="Server URL for --engine openai, e.g. http://localhost:8000/v1.")]


@eval_app.command("wvs")
def eval_wvs_cmd(
    survey: Annotated[
        Path, typer.Option(help="WVS folder (questions.jsonl + distributions.csv) or GlobalOpinionQA CSV.")
    ],
    cultures: Annotated[str, typer.Option(help="Comma-separated ISO alpha-3 codes, e.g. DEU,CHN.")],
    model: Model = "smollm2",
    prompt: Annotated[str, typer.Option(help="unaware | aware | cross-culture")] = "aware",
    adapter: Annotated[str | None, typer.Option(help="PEFT adapter folder to apply to the model.")] = None,
    topics: Annotated[list[str] | None, typer.Option(help="Only these survey topics (repeatable).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N questions per culture (seeded sample).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/eval-wvs-<time>).")] = None,
    engine: Engine = "local",
    base_url: BaseUrl = None,
    dtype: Annotated[str, typer.Option(help="float32 or bfloat16 (local engine).")] = "float32",
    batch_size: BatchSize = 16,
    icl: Annotated[
        int, typer.Option(min=0, help="Self-alignment: show K answered questions of the culture first.")
    ] = 0,
    variants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated evaluation variants, e.g. default,reversed,shuffle-1,template-interview,"
            "template-nosystem,paraphrase ('standard': four of them); figures become means with their spread."
        ),
    ] = None,
    paraphrases: Annotated[
        Path | None, typer.Option(help="JSON/YAML file: question id -> paraphrased text (the 'paraphrase' variant).")
    ] = None,
) -> None:
    """Measure how well a model's answers match a culture's survey answers (four metrics)."""
    from culturealign.api import EngineSettings, eval_wvs
    from culturealign.evaluate.base import format_metrics
    from culturealign.evaluate.wvs import WVS

    settings = EngineSettings(engine, model, adapter, base_url, dtype, batch_size)
    result = eval_wvs(
        survey, cultures, settings, prompt, topics, limit, out, icl, variants=variants, paraphrases=paraphrases
    )
    console.print(format_metrics(WVS, result.metrics, f"WVS alignment of {model} ({prompt} prompting)"))


@eval_app.command("blend")
def eval_blend_cmd(
    data: Annotated[Path, typer.Option(help="BLEnD folder: one <Country>.jsonl per country or region.")],
    cultures: Annotated[
        str | None, typer.Option(help="Comma-separated BLEnD names, e.g. UK,China (default: all).")
    ] = None,
    model: Model = "smollm2",
    adapter: Annotated[str | None, typer.Option(help="PEFT adapter folder to apply to the model.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N questions per region (seeded sample).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/eval-blend-<time>).")] = None,
    engine: Engine = "local",
    base_url: BaseUrl = None,
    dtype: str = "float32",
    batch_size: BatchSize = 16,
) -> None:
    """BLEnD everyday-culture short answers: accuracy and vote-weighted accuracy per region."""
    from culturealign.api import EngineSettings, eval_blend
    from culturealign.evaluate.base import format_metrics
    from culturealign.evaluate.blend import Blend

    metrics = eval_blend(
        data, cultures, EngineSettings(engine, model, adapter, base_url, dtype, batch_size), limit, out
    )
    console.print(format_metrics(Blend, metrics, f"BLEnD short-answer accuracy of {model}"))


@eval_app.command("relations")
def eval_relations_cmd(
    survey: Annotated[Path, typer.Option(help="WVS folder (questions.jsonl + distributions.csv).")],
    cultures: Annotated[str | None, typer.Option(help="Comma-separated alpha-3 codes (default: all).")] = None,
    model: Model = "smollm2",
    adapter: Annotated[str | None, typer.Option(help="PEFT adapter folder to apply to the model.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N questions per culture.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/eval-relations-<time>).")] = None,
    engine: Engine = "local",
    base_url: BaseUrl = None,
    dtype: str = "float32",
    batch_size: BatchSize = 16,
) -> None:
    """Does the model see the same cultural map as the people? Culture x culture similarity, rank correlation."""
    from culturealign.api import EngineSettings, eval_relations

    settings = EngineSettings(engine, model, adapter, base_url, dtype, batch_size)
    rel = eval_relations(survey, cultures, settings, limit, out)
    console.print(
        f"Spearman rank correlation of the model's culture-similarity matrix with the survey's: "
        f"{rel['spearman']:.3f} (p = {rel['p_value']:.3g}, {rel['n_pairs']} culture pairs)"
    )


@eval_app.command("hhh")
def eval_hhh_cmd(
    data: Annotated[Path, typer.Option(help="CulturaX-format CSV (or its folder): Question, class, *_response.")],
    model: Model = "smollm2",
    adapter: Annotated[str | None, typer.Option(help="PEFT adapter folder to apply to the model.")] = None,
    judge_model: Annotated[str | None, typer.Option(help="Judge model (default: the model under test).")] = None,
    engine: Engine = "local",
    base_url: BaseUrl = None,
    judge_engine: Annotated[str | None, typer.Option(help="Judge engine (default: --engine).")] = None,
    judge_base_url: Annotated[str | None, typer.Option(help="Judge server URL (default: --base-url).")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="A seeded slice of N items (default 50; 0 = all).")] = 50,
    max_tokens: Annotated[int, typer.Option(help="Longest answer of the model under test.")] = 128,
    train_data: Annotated[
        Path | None, typer.Option(help="Training questions (JSONL/CSV) to measure leakage against.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/eval-hhh-<time>).")] = None,
    safety_classifier: Annotated[
        str | None, typer.Option(help="A text-classification model (HF id or folder) to judge safety instead.")
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="Answer runs averaged, with SD and min-max (the paper: 3).")] = 1,
    temperature: Annotated[float, typer.Option(min=0, help="0 = greedy; the paper: 0.7 (for --runs > 1).")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling, in (0, 1]; the paper: 0.9.")] = 1.0,
    repetition_penalty: Annotated[float, typer.Option(help="> 0; 1.0 = none; the paper: 1.1.")] = 1.0,
    seed: Annotated[int, typer.Option(help="The items' seeded slice; run r samples with seed * 100 + r.")] = 0,
) -> None:
    """AlignCultura's HHH benchmark: win rate, safety, truthful-and-informative, joint score, cultural failures."""
    from culturealign.evaluate.base import format_metrics
    from culturealign.evaluate.hhh import HHH
    from culturealign.recipes.alignculture import eval_hhh

    metrics = eval_hhh(
        data,
        model,
        adapter,
        judge_model,
        engine,
        base_url,
        judge_engine,
        judge_base_url,
        limit or None,
        max_tokens,
        train_data,
        out,
        seed=seed,
        safety_classifier=safety_classifier,
        runs=runs,
        temperature=temperature,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
    )
    console.print(format_metrics(HHH, metrics, f"HHH benchmark of {model} (judge: {judge_model or model})"))


@eval_app.command("lmeval")
def eval_lmeval_cmd(
    model: Model = "smollm2",
    adapter: Annotated[str | None, typer.Option(help="PEFT adapter folder: scored beside the base model.")] = None,
    tasks: Annotated[
        str, typer.Option(help="Comma-separated lm-evaluation-harness tasks (hub tasks such as mmlu need internet).")
    ] = "culturealign_general_mc",
    limit: Annotated[int | None, typer.Option(min=1, help="At most N documents per task.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/eval-lmeval-<time>).")] = None,
    batch_size: BatchSize = 16,
) -> None:
    """General ability through lm-evaluation-harness: each task's score for base and tuned, with standard errors."""
    from culturealign.api import eval_lmeval
    from culturealign.evaluate.lmeval import format_table

    table = eval_lmeval(model, adapter, tasks, limit, out, batch_size)
    console.print(format_table(table, f"lm-evaluation-harness: {model}" + (f" vs + {adapter}" if adapter else "")))


@app.command("map")
def map_cmd(
    survey: Annotated[Path, typer.Option(help="WVS folder, or the official respondent CSV (with --questions).")],
    cultures: Annotated[str, typer.Option(help="Comma-separated alpha-3 codes of survey countries, e.g. USA,DEU.")],
    model: Model = "smollm2",
    adapter: Annotated[str | None, typer.Option(help="PEFT adapter: placed beside the base model.")] = None,
    questions: Annotated[Path | None, typer.Option(help="questions.jsonl, when --survey is a respondent CSV.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/eval-map-<time>).")] = None,
    engine: Engine = "local",
    base_url: BaseUrl = None,
    dtype: str = "float32",
    batch_size: BatchSize = 16,
) -> None:
    """Place the model, culture-unaware and as each culture, on the survey countries' Inglehart-Welzel map."""
    from rich.table import Table

    from culturealign.api import EngineSettings, cultural_map
    from culturealign.evaluate.iwmap import SURVIVAL, TRADITIONAL

    out = out or Path(f"runs/eval-map-{time.strftime('%Y%m%d-%H%M%S')}")
    result = cultural_map(
        survey, cultures, EngineSettings(engine, model, adapter, base_url, dtype, batch_size), questions, out
    )
    models = result["models"]
    table = Table(title=f"Inglehart-Welzel map ({result['source']})")
    table.caption = "x: survival -> self-expression, y: traditional -> secular-rational (SD of the survey's countries)"
    for col in ("culture", "country (x, y)", *(f"{name}: persona (x, y), distance" for name in models)):
        table.add_column(col, justify="left" if col == "culture" else "right")

    def xy(p: dict) -> str:
        return f"({p[SURVIVAL]:+.2f}, {p[TRADITIONAL]:+.2f})"

    for code in next(iter(models.values()))["personas"]:
        cells = [f"{xy(m['personas'][code])}  {m['personas'][code]['distance']:.2f}" for m in models.values()]
        table.add_row(code, xy(result["countries"][code]), *cells)
    table.add_row("unaware", "", *(xy(m["unaware"]) for m in models.values()))
    table.add_row("mean distance", "", *(f"{m['mean_distance']:.3f}" for m in models.values()))
    table.add_row("unaware, mean", "", *(f"{m['unaware_mean_distance']:.3f}" for m in models.values()))
    console.print(table)
    if "tuned" in models:
        change = models["tuned"]["mean_distance"] - models["base"]["mean_distance"]
        console.print(f"mean persona-to-country distance after tuning: {change:+.3f} (negative = closer)")
    missing = ", ".join(f"{k} ({' '.join(v)})" for k, v in result["indicators_missing"].items())
    console.print(f"indicators used: {', '.join(i['name'] for i in result['indicators'])}")
    if missing:
        console.print(f"missing from the survey: {missing}")
    console.print(f"coordinates, map.png and map.svg written to {out / 'eval' / 'iwmap'}")


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_cmd(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/culturespa.yaml.")],
    from_: Annotated[str | None, typer.Option("--from", help="Redo this stage and every one after it.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (overrides the config's out).")] = None,
) -> None:
    """Run a recipe; extra arguments key.sub=value override any config field. Re-running resumes."""
    import yaml

    from culturealign.recipes import recipe_module

    try:
        recipe = (yaml.safe_load(config.read_text("utf-8")) or {}).get("recipe", config.stem)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError) as e:
        reason = " ".join(str(e).split())  # PyYAML's messages span lines: one line for the user
        raise UserError(f"cannot read recipe {config}: {reason}; it must be a UTF-8 YAML mapping") from e
    from culturealign.config import load

    module = recipe_module(str(recipe), f" in {config}")
    overrides = list(ctx.args) + ([f"out={out}"] if out else [])
    folder = load(config, module.CONFIG, overrides).out  # a bad config stops here, before any work
    for item in module.show(module.run(config, overrides, from_)):
        console.print(item)
    console.print(f"\nrun folder: {folder}\nits report: culturealign report {folder}")


@app.command("config")
def config_cmd(
    recipe: Annotated[str, typer.Argument(help="A recipe: alignculture, caredio, clca, culturespa, surveyfit.")],
) -> None:
    """Every setting of a recipe with its default and meaning, as YAML: `culturealign config clca > my.yaml`."""
    from culturealign.recipes import config_text

    typer.echo(config_text(recipe), nl=False)


@app.command("ablate")
def ablate_cmd(
    run: Annotated[Path, typer.Argument(help="A finished culturespa run folder.")],
    what: Annotated[
        str,
        typer.Option(help="culturespa: joint-vs-specific|quantity|quality; caredio: selection; surveyfit: controls"),
    ],
) -> None:
    """Ablations on a finished run: each variant trained and evaluated (WVS, culture-aware)."""
    import yaml

    from culturealign.recipes import recipe_module

    try:
        recipe = (yaml.safe_load((run / "config.yaml").read_text("utf-8")) or {}).get("recipe", "culturespa")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError) as e:
        raise UserError(f"{run} is not a run folder (no readable config.yaml)") from e
    module = recipe_module(str(recipe), f" in {run / 'config.yaml'}")
    if what not in module.ABLATIONS:
        have = ", ".join(module.ABLATIONS) or "none"
        raise UserError(f"{recipe} runs have no ablation {what!r}: their ablations are {have}")
    for item in module.show_ablation(module.ablate(run, what), what):
        console.print(item)


@app.command("merge")
def merge_cmd(
    adapter: Annotated[Path, typer.Option(help="PEFT adapter folder (e.g. runs/culturespa/train/joint).")],
    out: Annotated[Path, typer.Option(help="Folder for the merged model.")],
    model: Model = "smollm2",
) -> None:
    """Merge a LoRA adapter into its base model: a plain transformers folder that any engine can serve."""
    from culturealign.llm.models import check_adapter, resolve_model
    from culturealign.train import merge_adapter

    check_adapter(adapter)
    merge_adapter(resolve_model(model), adapter, out)
    console.print(f"merged model written to {out}")


@app.command("report")
def report_cmd(
    runs: Annotated[list[Path], typer.Argument(help="One run folder, or several to compare.")],
    out: Annotated[Path | None, typer.Option(help="HTML file (default: <first run>/report.html).")] = None,
) -> None:
    """Write one self-contained HTML page (plots embedded) for a run or a comparison of runs."""
    from culturealign.report import write_report

    for run in runs:
        if not run.is_dir():
            raise UserError(f"run folder not found: {run}")
    path = write_report(runs, out or runs[0] / "report.html")
    console.print(f"report written to {path}")


@app.command("compare")
def compare_cmd(
    runs: Annotated[
        list[Path], typer.Argument(help="Run folders (or eval folders) to compare; the first is the base.")
    ],
    eval_name: Annotated[str | None, typer.Option("--eval", help="Eval to compare, e.g. wvs-after.")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples over questions.")] = 1000,
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the comparison as JSON here.")] = None,
) -> None:
    """Every metric per culture for each run, its difference to the first, and a bootstrap 95% interval."""
    from culturealign.evaluate.compare_runs import compare_runs, format_comparison
    from culturealign.runs import write_json

    if len(runs) < 2:
        raise UserError("compare needs at least two run folders")
    result = compare_runs(runs, eval_name, n_boot, seed)
    console.print(format_comparison(result))
    if out:
        write_json(out, result)


@app.command("cultures")
def cultures_cmd() -> None:
    """List the cultures the registry knows (code, name, adjective, region)."""
    from culturealign.cultures import all_cultures

    for c in all_cultures():
        console.print(f"{c.code}  {c.name:<28} {c.adjective:<16} {c.region}")


@app.command("build-survey")
def build_survey_cmd(
    respondents: Annotated[
        Path, typer.Option(help="Official WVS Wave 7 respondent file: .sav or .dta (SPSS, Stata), or .csv.")
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the aggregate survey layout into.")],
    questions: Annotated[
        Path | None, typer.Option(help="questions.jsonl with the items' text and options (a .csv only: it has codes).")
    ] = None,
    country_column: str = "B_COUNTRY_ALPHA",
    weight_column: str = "W_WEIGHT",
) -> None:
    """Turn the official respondent-level WVS file into the aggregate folder every command reads (weighted shares)."""
    from culturealign.data.labelled import READERS, load_labelled_respondents
    from culturealign.data.survey import load_wvs_respondents, write_survey_folder

    if respondents.suffix.lower() in READERS:
        if questions is not None:
            raise UserError("the file's own variable and value labels give the questions: leave out --questions")
        survey = load_labelled_respondents(respondents, country_column, weight_column)
    elif questions is None:
        raise UserError(f"{respondents} holds codes only: pass --questions questions.jsonl, or use the .sav/.dta file")
    else:
        survey = load_wvs_respondents(respondents, questions, country_column, weight_column)
    write_survey_folder(survey, out)
    _print_survey(survey, out)


def _print_survey(survey, out: Path) -> None:
    console.print(f"wrote {len(survey.countries)} countries, {len(survey.questions)} questions to {out}")
    for reason, n in sorted(survey.skipped.items()):
        console.print(f"skipped {n:,}: {reason}")
    for note in survey.notes:
        console.print(f"note: {note}")


data_app = typer.Typer(no_args_is_help=True, help="Get survey and benchmark data into the folders commands read.")
app.add_typer(data_app, name="data")


@data_app.command("get")
def data_get_cmd(
    name: Annotated[str, typer.Argument(help="globalopinionqa | blend")],
    out: Annotated[Path, typer.Option(help="Folder to write.")],
    source: Annotated[
        str | None, typer.Option(help="A hub id, or a downloaded folder or file (hf download ... --local-dir DIR).")
    ] = None,
    regions: Annotated[str | None, typer.Option(help="blend: comma-separated regions (default: all).")] = None,
) -> None:
    """Download GlobalOpinionQA (a survey folder) or BLEnD (the folder `eval blend` reads) through `datasets`."""
    from culturealign.data import hub

    if name == "globalopinionqa":
        survey = hub.get_globalopinionqa(out, source or hub.GOQA_SOURCE)
        _print_survey(survey, out)
    elif name == "blend":
        wanted = [r.strip() for r in regions.split(",") if r.strip()] if regions else None
        written = hub.get_blend(out, source or hub.BLEND_SOURCE, wanted)
        console.print(f"wrote {len(written)} regions, {sum(written.values()):,} questions to {out}")
    else:
        raise UserError(f"unknown data set {name!r}: use globalopinionqa or blend")


def main() -> None:
    try:
        app(standalone_mode=False)
    except UserError as e:
        if _state["debug"]:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as e:  # a bad option or value (typer's click): one line, like every other mistake
        if _state["debug"]:
            raise
        ctx = getattr(e, "ctx", None)
        hint = f"; see {ctx.command_path} --help" if ctx is not None else ""
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        print(f"error: {' '.join(message.split())}{hint}", file=sys.stderr)
        sys.exit(2)
