"""``equity-pipeline`` command line. Heavy libraries (Dagster, GX, polars) are imported lazily so
``--help`` stays fast. The CLI is the only place in the package that imports Dagster: ``run``
materializes the code location's asset graph in process."""
from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from pathlib import Path

DEMO_MEMBERS = 20_000
DEMO_SEED = 42


def _progress(message: str) -> None:
    print(f"[equity-pipeline {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _dagster_home(out: Path) -> Path:
    """DAGSTER_HOME for CLI runs: the caller's, or ``<out>/.dagster`` with telemetry off (SQLite storage)."""
    home = Path(os.environ.get("DAGSTER_HOME") or (out / ".dagster")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_generate(args: argparse.Namespace) -> int:
    from equity_pipeline.generate import generate

    started = time.time()
    summary = generate(args.members, args.seed, Path(args.out), fmt=args.format, messy_share=args.messy_share,
                       measurement_year=args.measurement_year, progress=lambda msg, frac: _progress(f"generate: {msg} ({frac:.0%})"))
    _progress(f"generated {args.members:,} members into {args.out} in {time.time() - started:.1f}s")
    for table, rows in sorted(summary.get("rows", {}).items()):
        print(f"{table}: {rows:,} rows")
    return 0


def run_pipeline(input_dir: Path, out: Path, config_file: str | None = None, *, run_date: str | None = None, quiet: bool = False,
                 source: str = "canonical") -> str:
    """Materialize the whole asset graph in process; return the Dagster run id.

    The run holds ``<out>/.run.lock`` throughout (see ``equity_pipeline.runlock``): a second run into
    the same folder fails at once, and an unwritable folder fails before any work is done."""
    from equity_pipeline.errors import PipelineError
    from equity_pipeline.runlock import run_lock

    if not input_dir.is_dir():
        raise PipelineError(f"input folder not found: {input_dir}")
    from equity_pipeline.sources import check_source

    check_source(source)  # canonical or a source format of sources.READERS (docs/sources.md)
    if config_file:
        from equity_pipeline.config import load_config

        load_config(config_file)  # fail fast with a clear message before Dagster starts
    with run_lock(out) as lock:
        if lock.previous_interrupted and not quiet:
            _progress(f"the previous run into {out} did not finish (killed?); this run rewrites its outputs")
        return _execute_job(input_dir, out, config_file, run_date=run_date, quiet=quiet, previous_interrupted=lock.previous_interrupted,
                            source=source)


#: a full disk, a quota, a read-only file system: a step could not write its outputs
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _disk_full(out: Path, exc: OSError) -> Exception:
    from equity_pipeline.errors import PipelineError

    return PipelineError(f"cannot write outputs in {out} ({os.strerror(exc.errno)}); every file there is whole (written "
                         "atomically) but the folder mixes this run's files with earlier ones: free space and run again")


def _fail_orphaned_runs(instance) -> int:
    """Mark runs a killed CLI run left "started" in the output folder's own instance as failed."""
    import dagster as dg

    orphans = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]))
    for run in orphans:
        instance.report_run_failed(run, message="the process running it stopped (killed) before the run ended")
    return len(orphans)


#: CPU seconds (user + system, this process and its finished children) per step of the last run in this
#: process, filled as each step ends (``bench`` prints them as ``steps_cpu_s``)
STEP_CPU_S: dict[str, float] = {}
#: peak resident set (MB) of this process during each step of the last run, when ``bench`` tracks it
#: (``bench.track_step_peaks``; ``steps_peak_rss_mb``)
STEP_PEAK_MB: dict[str, float] = {}


def _execute_job(input_dir: Path, out: Path, config_file: str | None, *, run_date: str | None, quiet: bool, previous_interrupted: bool = False,
                 source: str = "canonical") -> str:
    from equity_pipeline.errors import PipelineError

    home = _dagster_home(out)
    import dagster as dg

    from assets.definitions import defs

    from equity_pipeline.bench import cpu_seconds, step_peak_mb

    job = defs.resolve_job_def("equity_pipeline_job")
    n_steps = len(job.nodes_in_topological_order)
    done = []
    STEP_CPU_S.clear()
    STEP_PEAK_MB.clear()
    mark = [cpu_seconds()]
    step_peak_mb()   # a new window: the first step's peak is its own

    @dg.success_hook
    def _tick(context) -> None:
        # the in-process executor runs one step at a time: the CPU used since the previous step ended
        # is this step's (with Dagster's own work between the two)
        now = cpu_seconds()
        STEP_CPU_S[context.op.name] = now - mark[0]
        mark[0] = now
        peak = step_peak_mb()
        if peak is not None:
            STEP_PEAK_MB[context.op.name] = peak
        done.append(context.op.name)
        if not quiet:
            _progress(f"[{len(done)}/{n_steps}] {context.op.name} done")

    resource_config = {"input_dir": str(input_dir), "out_dir": str(out), "source": source}
    if config_file:
        resource_config["config_file"] = str(config_file)
    if run_date:
        resource_config["run_date"] = run_date
    run_config = {
        "resources": {"pipeline_config": {"config": resource_config}},
        "loggers": {"console": {"config": {"log_level": "ERROR"}}},
    }
    with dg.DagsterInstance.get() as instance:
        if previous_interrupted and home == (out / ".dagster").resolve():  # our own instance: nothing else runs in it
            _fail_orphaned_runs(instance)
        began = time.time()
        try:
            result = job.with_hooks({_tick}).execute_in_process(run_config=run_config, instance=instance, raise_on_error=True)
        except dg.DagsterExecutionStepExecutionError as exc:
            user = getattr(exc, "user_exception", None)
            if isinstance(user, PipelineError):
                raise user from None
            if isinstance(user, OSError) and user.errno in _DISK_FULL:
                raise _disk_full(out, user) from None
            raise
        except OSError as exc:  # the step's own exception (raise_on_error re-raises it)
            if exc.errno in _DISK_FULL:
                raise _disk_full(out, exc) from None
            raise
        except dg.DagsterError as exc:
            if type(exc).__name__ == "DagsterAssetCheckFailedError":  # a blocking check failed: name it on one line
                failed = "; ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
                raise PipelineError(f"blocking check failed ({failed}){_withheld_now(out, began)}; later steps did not run; "
                                    f"see the Dagster event log in {home}") from None
            raise
    if not result.success:
        raise PipelineError("the pipeline run failed; see the Dagster event log")
    return result.run_id


def _withheld_now(out: Path, since: float) -> str:
    """``"; withheld (not published): <files>"`` for the tables this run held back from ``public/``
    (``publish.withheld_outputs``, records written since ``since``: not a table an earlier run held
    back), or "". File names only."""
    from equity_pipeline.layout import OutputLayout
    from equity_pipeline.publish import withheld_outputs

    layout = OutputLayout(out)
    held = [r["withheld_file"] for r in withheld_outputs(layout) if (layout.root / r["withheld_file"]).stat().st_mtime >= since - 1]
    return f"; withheld (not published): {', '.join(held)}" if held else ""


def cmd_run(args: argparse.Namespace) -> int:
    started = time.time()
    run_id = run_pipeline(Path(args.input), Path(args.out), args.config, source=args.source)
    _progress(f"run {run_id} finished in {time.time() - started:.1f}s; outputs in {args.out}")
    warning = _no_members_warning(Path(args.out))
    if warning:
        _progress(warning)
    return 0


def _no_members_warning(out: Path) -> str | None:
    """A warning when the run had no validated member (counts only, from manifest.json)."""
    import json

    try:
        members = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["tables"]["members"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if members.get("used") != 0:
        return None
    return (f"warning: no validated member (members: {members.get('read')} rows read, {members.get('quarantined')} "
            "quarantined): the rate tables are empty; see report/index.html and validation/members.json")


def cmd_demo(args: argparse.Namespace) -> int:
    from equity_pipeline.generate import generate

    out = Path(args.out)
    input_dir = out / "input"
    _progress(f"generating demo data: {args.members:,} members (seed {DEMO_SEED}) into {input_dir}")
    generate(args.members, DEMO_SEED, input_dir, progress=None)
    started = time.time()
    run_id = run_pipeline(input_dir, out, args.config)
    _progress(f"demo run {run_id} finished in {time.time() - started:.1f}s")
    print(f"report: {out / 'report' / 'index.html'}")
    print(f"rates:  {out / 'public' / 'rates.csv'}")
    print(f"disparities: {out / 'public' / 'disparities.parquet'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="equity-pipeline", description="Health-equity disparity stratification pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic canonical dataset with planted disparities and truth.json")
    g.add_argument("--members", type=int, required=True, help="number of members")
    g.add_argument("--seed", type=int, default=1, help="random seed (same seed, same bytes)")
    g.add_argument("--out", required=True, help="output folder for the tables and truth.json")
    g.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    g.add_argument("--messy-share", type=float, default=0.02, help="share of messy records (default 0.02)")
    g.add_argument("--measurement-year", type=int, default=2025)
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("run", help="validate, measure, stratify and report on a folder of canonical tables")
    r.add_argument("--input", required=True, help="folder with members, enrollment, medical_claims, ... (.parquet or .csv)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--config", help="program config YAML (measures, measurement_year or measurement_period, stratifiers, ...; equity_pipeline/config.py)")
    r.add_argument("--source", choices=["canonical", "synthea", "fhir", "ahc-hrsn", "tuva", "cms-rif", "desynpuf"], default="canonical",
                   help="input format: canonical tables (default), a Synthea CSV export, FHIR R4 bundles / Bulk NDJSON, "
                        "AHC HRSN screening flat files (NY SHIN-NY layout), the Tuva Project input layer, "
                        "CMS CCW RIF files or CMS DE-SynPUF files (docs/sources.md)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="generate built-in demo data and run the whole pipeline on it")
    d.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    d.add_argument("--members", type=int, default=DEMO_MEMBERS, help=f"demo size (default {DEMO_MEMBERS:,})")
    d.add_argument("--config", help="program config YAML")
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("disparity", help="summary disparity measures for a CSV of groups (analyst calculator)")
    c.add_argument("--input", required=True, help="CSV: one row per group with numerator,denominator or rate,population[,se]; optional group, reference, order")
    c.add_argument("--out", help="write the JSON here as well as printing it")
    c.add_argument("--lower-is-better", action="store_true", help="the indicator is adverse (lower rates are better)")
    c.set_defaults(func=cmd_disparity)

    b = sub.add_parser("bench", help="generate (or reuse) N members, run the whole pipeline, print timing and memory figures as JSON")
    b.add_argument("--members", type=int, required=True, help="number of members")
    b.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    b.add_argument("--workdir", default="bench_data", help="where datasets and run outputs go (default bench_data); a dataset with the same size and seed is reused")
    b.add_argument("--messy-share", type=float, default=0.02, help="share of messy records (default 0.02)")
    b.set_defaults(func=cmd_bench)
    return parser


def _step_seconds(run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    """Wall seconds per step of a finished run, and each step's asset group, from the event log."""
    import dagster as dg

    from assets.definitions import defs

    starts: dict[str, float] = {}
    secs: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        for rec in instance.get_records_for_run(run_id, limit=100_000).records:
            ev = rec.event_log_entry.dagster_event
            if ev is None or not ev.step_key:
                continue
            if ev.event_type == dg.DagsterEventType.STEP_START:
                starts[ev.step_key] = rec.event_log_entry.timestamp
            elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE) and ev.step_key in starts:
                secs[ev.step_key] = rec.event_log_entry.timestamp - starts[ev.step_key]
    graph = defs.resolve_asset_graph()
    groups: dict[str, str] = {}
    for key in graph.get_all_asset_keys():
        groups[key.path[-1]] = graph.get(key).group_name
    group_of_step = {step: groups.get(step, "validation" if "gx_" in step else "other") for step in secs}
    return secs, group_of_step


def cmd_bench(args: argparse.Namespace) -> int:
    import json
    import shutil

    from equity_pipeline import bench
    from equity_pipeline.generate import generate

    work = Path(args.workdir)
    input_dir = work / f"input_{args.members}_{args.seed}"
    if not bench.dataset_matches(input_dir, args.members, args.seed):
        shutil.rmtree(input_dir, ignore_errors=True)
        _progress(f"bench: generating {args.members:,} members into {input_dir}")
        generate(args.members, args.seed, input_dir, messy_share=args.messy_share,
                 progress=lambda msg, frac: _progress(f"generate: {msg} ({frac:.0%})"))
    else:
        _progress(f"bench: reusing {input_dir}")
    floor = bench.scan_floor(input_dir)
    out = work / f"out_{args.members}_{args.seed}"
    shutil.rmtree(out, ignore_errors=True)
    bench.track_step_peaks()
    started = time.perf_counter()
    run_id = run_pipeline(input_dir, out)
    total = time.perf_counter() - started
    secs, groups = _step_seconds(run_id)
    result = bench.result(members=args.members, input_dir=input_dir, floor=floor,
                          stages=bench.stage_seconds(secs, groups), total=total, steps=secs,
                          steps_cpu=dict(STEP_CPU_S), stages_cpu=bench.stage_seconds(STEP_CPU_S, groups),
                          steps_peak=dict(STEP_PEAK_MB))
    print(json.dumps(result, indent=2))
    return 0


def cmd_disparity(args: argparse.Namespace) -> int:
    import json

    from equity_pipeline.stats.calculator import run_calculator

    result = run_calculator(Path(args.input), Path(args.out) if args.out else None, favourable=not args.lower_is_better)
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from equity_pipeline.errors import PipelineError

    try:
        return args.func(args)
    except PipelineError as exc:
        print(f"equity-pipeline: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"equity-pipeline: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
