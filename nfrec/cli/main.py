"""`nfrec`: the command line of the project.

nfrec prepare --format netflix-kaggle --ratings FILE --movies FILE --output DIR
nfrec prepare --format netflix-prize --combined FILE [FILE ...] --titles FILE --output DIR
nfrec prepare --format movielens --input DIR --output DIR
nfrec run [--data DIR] [--output DIR] [--preset NAME] [--set NAME=VALUE ...] [--tune NAME=[V,...]]
nfrec bench pipeline|trainer|serving|quality|batch|rest|multiworker|objective|stopping [--help]
nfrec recommend --user ID [-k 10] [--model DIR]
nfrec rate --user ID --movie ID_OR_TITLE [--model DIR]
nfrec serve [--model DIR] [--port 8501]
nfrec compile-kubeflow --output pipeline.json --data gs://... --pipeline-output gs://...
nfrec generate-sample --output DIR [--users N] [--movies N] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# Before TensorFlow is first imported: its C++ log noise is not for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nfrec import contracts
from nfrec.cli import logs
from nfrec.data import prepare as prepare_lib
from nfrec.data import sample as sample_lib
from pipeline import config as config_lib

DEFAULTS = config_lib.PipelineConfig(data_dir="")  # the defaults every option shows
DEFAULT_MODEL = config_lib.serving_model_dir(config_lib.DEFAULT_OUTPUT_DIR)


def _parse_override(text: str):
  name, sep, value = text.partition("=")
  if not sep:
    raise argparse.ArgumentTypeError(f"--set expects NAME=VALUE, got {text!r}")
  try:
    return name, json.loads(value)
  except json.JSONDecodeError:
    return name, value


def _parse_tuning(text: str):
  name, values = _parse_override(text)
  if not isinstance(values, list) or not values:
    raise argparse.ArgumentTypeError(
      f"--tune expects NAME=[VALUE, ...] (a JSON list), got {text!r}"
    )
  return name, tuple(values)


TUNE_HELP = (
  "let a Tuner choose this hyperparameter among these values on the validation split, "
  "e.g. --tune 'embedding_dim=[128, 256]' (repeat: every combination is tried)"
)


def _rating_stage_text(stage: dict | None) -> str:
  if not stage:
    return ""
  return f", plus {stage['epochs_selected']} of {stage['epochs_run']} rating-stage epochs"


def _print_summary(summary: dict) -> None:
  print("\n== Run summary ==")
  print(f"wall time: {summary['wall_time_s']} s   preset: {summary['preset']}")
  for name, info in summary["components"].items():
    print(f"  {name:<32} {info['state']:<9} {info['seconds']:>7.1f} s")
  data = summary.get("data", {})
  ratings = data.get("ratings", {})
  splits = ", ".join(f"{split} {count:,}" for split, count in ratings.items())
  print(
    f"data: {sum(ratings.values()):,} ratings ({splits}), "
    f"{data.get('known_users') or 0:,} users and {data.get('indexed_movies') or 0:,} movies "
    f"learned, catalog of {data.get('catalog_movies') or 0:,} movies"
  )
  found = {split: items for split, items in summary.get("anomalies", {}).items() if items}
  print(f"anomalies: {found if found else 'none'}")
  tuner = summary.get("tuner")
  if tuner:
    best = tuner["trials"][0]
    print(
      f"tuner (validation split, {len(tuner['trials'])} trials, best score {best['score']:.4f}): "
      + ", ".join(f"{name}={value}" for name, value in tuner["chosen"].items())
    )
  trainer = summary.get("trainer_metrics", {})
  if trainer:
    print(
      f"trainer (validation split, epoch {trainer.get('epochs_selected')} of "
      f"{trainer.get('epochs_run')} selected"
      + _rating_stage_text(trainer.get("rating_stage"))
      + (", then refit on train + validation" if trainer.get("refit_on_validation") else "")
      + "): "
      + ", ".join(
        f"{name} {trainer[name]:.4f}" for name in contracts.METRIC_LABELS if name in trainer
      )
    )
  evaluator = summary.get("evaluator_metrics", {})
  if evaluator:
    print(
      "evaluator (TFMA, eval split): "
      + ", ".join(f"{name} {value:.4f}" for name, value in sorted(evaluator.items()))
    )
  retrieval = summary.get("retrieval_evaluation")
  if retrieval:
    for who, label in (
      ("model", "model"),
      ("most_popular", "most popular"),
      ("baseline_model", "last blessed"),
    ):
      if retrieval.get(who):
        print(
          f"retrieval, {label:<12} (eval split, filtered recall/NDCG): "
          + ", ".join(f"{name} {retrieval[who][name]:.4f}" for name in contracts.RETRIEVAL_METRICS)
        )
    new = retrieval.get("new_users") or {}
    if new:
      recall = contracts.recall_at(10)
      print(
        f"new users ({new['users']:,}, never trained on; half their ratings given): "
        f"model {recall} {new['model'][recall]:.4f}, RMSE {new['model'][contracts.RMSE]:.4f}; "
        f"most popular {recall} {new['most_popular'][recall]:.4f}"
      )
    print(
      "rating baselines (eval split): "
      + ", ".join(
        f"{name} RMSE {values[contracts.RMSE]:.4f}"
        for name, values in retrieval["rating_baselines"].items()
      )
    )
  for reason in summary.get("gate_reasons", []):
    print(f"not blessed: {reason}")
  print(
    f"blessed: {summary['blessed']}   pushed: "
    + (summary["pushed_to"] if summary["pushed"] else "no (the served model is unchanged)")
  )


def cmd_prepare(args) -> int:
  prepare = prepare_lib
  needed = {
    "netflix-kaggle": ("ratings", "movies"),
    "netflix-prize": ("combined", "titles"),
    "movielens": ("input",),
  }[args.format]
  missing = [f"--{name}" for name in needed if not getattr(args, name)]
  if missing:
    raise prepare.PrepareError(f"--format {args.format} needs {' and '.join(missing)}.")
  if args.format == "netflix-kaggle":
    source = prepare.netflix_kaggle(args.ratings, args.movies)
  elif args.format == "netflix-prize":
    source = prepare.netflix_prize(args.combined, args.titles)
  else:
    source = prepare.movielens(args.input)
  report = prepare.prepare(source, args.output, args.max_reject_share)
  if args.span_by:
    from nfrec.data import spans

    counts = spans.split_into_spans(args.output, args.span_by)
    print(
      f"spans by {args.span_by}: {len(counts)} (span-1 .. span-{len(counts)}), "
      f"{min(c for _, c in counts):,} to {max(c for _, c in counts):,} ratings each"
    )
  rejected = report.rows_in - report.rows_written
  print(
    f"ratings: {report.rows_in:,} in, {report.rows_written:,} written, {rejected:,} rejected"
    f"; movies: {report.movies_in:,} in, {report.movies_written:,} written"
  )
  for reason, count in sorted(report.rejects.items()):
    print(f"  rejected, {reason}: {count:,}")
  print(
    f"wrote {args.output}/{contracts.RATINGS_FOLDER}, {args.output}/{contracts.MOVIES_FOLDER}, "
    f"{args.output}/{contracts.REJECTS_FILE}; next: nfrec run --data {args.output}"
  )
  return 0


def cmd_run(args) -> int:
  from nfrec.cli import progress
  from nfrec.reporting import report, run_summary
  from nfrec.serving import client as serving_client
  from pipeline import local_runner

  config = config_lib.PipelineConfig.for_data_dir(
    os.path.abspath(args.data or sample_lib.embedded_sample_dir()),
    output_dir=os.path.abspath(args.output),
    preset=args.preset,
    hparam_overrides=tuple(args.set or ()),
    tuning_space=tuple(args.tune or ()),
    index_type=args.index,
    beam_runner=args.beam_runner,
    retrieval_min_ratio_to_popular=args.min_ratio_to_popular,
    warm_start=args.warm_start,
    span_window=args.span_window,
    **(
      {
        "rmse_change_tolerance": args.change_tolerance,
        "retrieval_change_tolerance": args.change_tolerance,
      }
      if args.change_tolerance is not None
      else {}
    ),
  )
  config.validate()
  metadata_config = local_runner.metadata_connection_config(config)

  def rows_of(component):
    return run_summary.rows_counted_by(metadata_config, config.pipeline_name, component)

  with progress.printing(rows_of=rows_of):
    run = local_runner.run(config)
  summary = run_summary.write(
    run.config, run.metadata_config, started_at=run.started_at, wall_time_s=run.wall_time_s
  )
  report.write(config.output_dir, summary)
  _print_summary(summary)
  print(f"summary written to {os.path.join(config.output_dir, run_summary.SUMMARY_FILE)}")
  try:
    recommender = serving_client.Recommender(config.serving_model_dir)
  except serving_client.ModelNotFound as error:
    recommender = None
    print(f"no served model: {error}")
  if recommender:
    user = args.user or recommender.most_active_user()
    print(f"\nserved model: {recommender.version_dir}")
    print(serving_client.format_recommendations(recommender.recommend([user])[0]))
  if not summary["blessed"]:
    # Exit 1: the run worked, but produced nothing to serve (the gate held).
    print(
      '\nthe new model was not blessed (see "not blessed:" above and report.html): '
      "it was not pushed, the served model is unchanged",
      file=sys.stderr,
    )
    return 1
  return 0


def cmd_recommend(args) -> int:
  from nfrec.serving import client as serving_client

  recommender = serving_client.Recommender(args.model)
  if args.ratings is not None:
    results = [recommender.recommend_from_ratings(recommender.parse_ratings(args.ratings))]
  else:
    results = recommender.recommend(args.user)
  for result in results:
    result["items"] = result["items"][: args.k]
    print(serving_client.format_recommendations(result))
  return 0


def cmd_serve(args) -> int:
  from nfrec.serving import model_server

  options = {"model_name": args.model_name, "host": args.host, "port": args.port}
  if args.poll_seconds is not None:
    options["poll_seconds"] = args.poll_seconds
  if args.max_request_mb is not None:
    options["max_request_bytes"] = int(args.max_request_mb * 1024 * 1024)
  model_server.serve(args.model, **options)
  return 0


def cmd_replay(args) -> int:
  from nfrec.cli import replay

  run_args = ["--preset", args.preset]
  for name, value in args.set or ():
    run_args += ["--set", f"{name}={value}"]
  if args.change_tolerance is not None:
    run_args += ["--change-tolerance", str(args.change_tolerance)]
  print(" | ".join(replay.COLUMNS))
  rows = replay.replay(
    os.path.abspath(args.data),
    os.path.abspath(args.output),
    args.span_by,
    args.span_window,
    args.first_span,
    not args.cold,
    run_args,
    args.max_spans,
  )
  print(replay.render(rows))
  print(f"wrote {args.output}/replay.md and replay.json")
  return 0


def cmd_add_span(args) -> int:
  from nfrec.data import spans

  number = spans.add_span(args.data, args.ratings)
  print(f"added {args.ratings} as {args.data}/{contracts.RATINGS_FOLDER}/span-{number}")
  return 0


def cmd_export_recommendations(args) -> int:
  from modules.serving import batch
  from nfrec.serving import client as serving_client

  version_dir = serving_client.latest_version_dir(args.model)
  report = batch.write_recommendations(version_dir, args.output)
  print(
    f"wrote {report['rows']:,} recommendations for {report['users']:,} users to "
    f"{args.output}/{batch.PARQUET_FILE} and {batch.CSV_FILE} "
    f"({report['seconds']} s, {report['users_per_second']:,.0f} users/s) from {version_dir}"
  )
  return 0


def cmd_compile_kubeflow(args) -> int:
  from pipeline import kubeflow_runner

  config = config_lib.PipelineConfig(
    data_dir=args.data,
    output_dir=args.pipeline_output,
    preset=args.preset,
    hparam_overrides=tuple(args.set or ()),
    tuning_space=tuple(args.tune or ()),
    beam_runner=args.beam_runner,
    beam_extra_args=tuple(args.beam_arg or ()),
    index_type=args.index,
    distribution_strategy=args.distribution_strategy,
    schema_file=args.schema_file or "",
  )
  config.validate()
  spec = kubeflow_runner.compile_pipeline(config, args.image, args.output)
  tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
  print(
    f"wrote {args.output}: pipeline {spec['pipelineSpec']['pipelineInfo']['name']}, "
    f"{len(tasks)} tasks, image {args.image}"
  )
  return 0


def cmd_rate(args) -> int:
  from nfrec.serving import client as serving_client

  recommender = serving_client.Recommender(args.model)
  movie_id = recommender.resolve_movie(args.movie)
  result = recommender.predict_rating([args.user], [movie_id])[0]
  note = (
    " (fallback: the model does not know this user or movie; a mean rating)"
    if result["fallback"]
    else ""
  )
  print(f"user {args.user}, movie {movie_id}: predicted rating {result['rating']:.2f}{note}")
  return 0


def cmd_generate_sample(args) -> int:
  spec = sample_lib.SampleSpec(
    num_users=args.users,
    num_movies=args.movies,
    seed=args.seed,
    mean_ratings_per_user=args.ratings_per_user,
  )
  ratings_dir, movies_dir = sample_lib.write(args.output, spec)
  print(f"wrote {ratings_dir} and {movies_dir}")
  return 0


BENCHMARKS = {
  "pipeline": "benchmarks.pipeline_bench",
  "trainer": "benchmarks.trainer_bench",
  "serving": "benchmarks.serving_bench",
  "quality": "benchmarks.quality_bench",
  "batch": "benchmarks.batch_bench",
  "rest": "benchmarks.rest_load_bench",
  "multiworker": "benchmarks.multi_worker_bench",
  "objective": "benchmarks.objective_bench",
  "stopping": "benchmarks.stopping_bench",
}


def cmd_bench(args) -> int:
  """Benchmarks are not installed with the package: they run from a checkout."""
  import importlib

  if not os.path.isfile(os.path.join("benchmarks", "__init__.py")):
    raise FileNotFoundError(
      f"{os.getcwd()}: no benchmarks/ folder here; `nfrec bench` runs "
      "from a checkout of the repository (its root folder)."
    )
  sys.path.insert(0, os.getcwd())
  return importlib.import_module(BENCHMARKS[args.benchmark]).main(args.options)


class _OneLineErrorParser(argparse.ArgumentParser):
  """Usage errors in one line, like every other error of nfrec."""

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
  parser = _OneLineErrorParser(
    prog="nfrec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--verbose", action="store_true", help="show TFX/Beam/TF logs")
  commands = parser.add_subparsers(dest="command", required=True)

  prepare = commands.add_parser("prepare", help="convert real rating files to a data folder")
  prepare.add_argument(
    "--format", required=True, choices=["netflix-kaggle", "netflix-prize", "movielens"]
  )
  prepare.add_argument("--ratings", help="netflix-kaggle: Netflix_Dataset_Rating.csv")
  prepare.add_argument("--movies", help="netflix-kaggle: Netflix_Dataset_Movie.csv")
  prepare.add_argument("--combined", nargs="+", help="netflix-prize: combined_data_*.txt")
  prepare.add_argument("--titles", help="netflix-prize: movie_titles.csv")
  prepare.add_argument("--input", help="movielens: folder of 100K, 1M or latest files")
  prepare.add_argument("--output", required=True, help="data folder to write")
  prepare.add_argument(
    "--max-reject-share",
    type=float,
    default=prepare_lib.MAX_REJECT_SHARE,
    help="fail when more than this share of rating rows is rejected",
  )
  prepare.add_argument(
    "--span-by",
    choices=("day", "week", "month"),
    help="write the ratings as numbered spans (ratings/span-N/), one per period (needs time)",
  )
  prepare.set_defaults(func=cmd_prepare)

  run = commands.add_parser("run", help="run the TFX pipeline locally (Beam DirectRunner)")
  run.add_argument("--data", help="folder with ratings/ and movies/ (default: the embedded sample)")
  run.add_argument(
    "--output",
    default=DEFAULTS.output_dir,
    help="pipeline root, ML-Metadata, serving_model/, run_summary.json",
  )
  run.add_argument("--preset", default=DEFAULTS.preset, choices=sorted(config_lib.PRESETS))
  run.add_argument(
    "--set",
    action="append",
    type=_parse_override,
    metavar="NAME=VALUE",
    help="override a hyperparameter of the preset (JSON value)",
  )
  run.add_argument(
    "--tune", action="append", type=_parse_tuning, metavar="NAME=[VALUES]", help=TUNE_HELP
  )
  run.add_argument(
    "--index",
    default=DEFAULTS.index_type,
    choices=contracts.INDEX_TYPES,
    help="retrieval index in the serving model (scann needs ScaNN ops to serve)",
  )
  run.add_argument(
    "--beam-runner",
    default=DEFAULTS.beam_runner,
    choices=config_lib.LOCAL_BEAM_RUNNERS,
    help="Beam DirectRunner mode (in_memory: fastest below a few million ratings)",
  )
  run.add_argument(
    "--min-ratio-to-popular",
    type=float,
    default=DEFAULTS.retrieval_min_ratio_to_popular,
    help="retrieval gate: the model's filtered Recall@10 must reach the "
    "most-popular baseline's times this (0 turns this check off)",
  )
  run.add_argument(
    "--change-tolerance",
    type=float,
    help="how much worse than the last blessed model a new one may be and still be pushed: "
    "RMSE up by this, Recall@10 down by this (default: the config's, 1e-10 and 0.01)",
  )
  run.add_argument("--user", help="user to show recommendations for (default: most active)")
  run.add_argument(
    "--span-window",
    type=int,
    default=DEFAULTS.span_window,
    help="with spans: train on the newest span and the N - 1 before it",
  )
  run.add_argument(
    "--warm-start",
    action="store_true",
    help="start training from the last blessed model (ids carried over by id)",
  )
  run.set_defaults(func=cmd_run)

  recommend = commands.add_parser("recommend", help="top movies for users, from the pushed model")
  who = recommend.add_mutually_exclusive_group(required=True)
  who.add_argument("--user", action="append", help="a known user's User_ID (repeatable)")
  who.add_argument(
    "--ratings",
    metavar="MOVIE:RATING,...",
    help="someone the model has never seen, by their ratings, oldest first; a movie is a "
    'Movie_ID or an exact title (e.g. "Heat:5,1234:2")',
  )
  recommend.add_argument("-k", type=int, default=10)
  recommend.add_argument("--model", default=DEFAULT_MODEL)
  recommend.set_defaults(func=cmd_recommend)

  serve = commands.add_parser(
    "serve",
    help="the TF Serving REST API and a page, locally (production: tensorflow_model_server)",
  )
  serve.add_argument("--model", default=DEFAULT_MODEL, help="the model base path (versions in it)")
  serve.add_argument("--model-name", default=contracts.MODEL_NAME)
  serve.add_argument("--host", default="127.0.0.1")
  serve.add_argument("--port", type=int, default=contracts.REST_PORT)
  serve.add_argument(
    "--poll-seconds", type=float, help="how often to look for a new version (default 1)"
  )
  serve.add_argument("--max-request-mb", type=float, help="larger bodies get 413 (default 4)")
  serve.set_defaults(func=cmd_serve)

  replay_cmd = commands.add_parser(
    "replay", help="run the pipeline span after span over a data set with time"
  )
  replay_cmd.add_argument("--data", required=True, help="a prepared data folder with time")
  replay_cmd.add_argument("--output", required=True)
  replay_cmd.add_argument("--span-by", default="month", choices=("day", "week", "month"))
  replay_cmd.add_argument("--span-window", type=int, default=3)
  replay_cmd.add_argument("--first-span", type=int, default=3, help="the first span to run at")
  replay_cmd.add_argument("--max-spans", type=int, default=0, help="stop after this many runs")
  replay_cmd.add_argument("--cold", action="store_true", help="no warm start (to compare)")
  replay_cmd.add_argument("--preset", default=DEFAULTS.preset, choices=sorted(config_lib.PRESETS))
  replay_cmd.add_argument("--set", action="append", type=_parse_override, metavar="NAME=VALUE")
  replay_cmd.add_argument("--change-tolerance", type=float)
  replay_cmd.set_defaults(func=cmd_replay)

  add_span = commands.add_parser("add-span", help="add a ratings CSV as the next span")
  add_span.add_argument("ratings", help="a ratings CSV with the spans' header")
  add_span.add_argument("--data", required=True, help="data folder with ratings/span-N/")
  add_span.set_defaults(func=cmd_add_span)

  export = commands.add_parser(
    "export-recommendations",
    help="the top K of every known user of the pushed model, as Parquet and CSV",
  )
  export.add_argument("--model", default=DEFAULT_MODEL)
  export.add_argument("--output", required=True, help="folder to write the files into")
  export.set_defaults(func=cmd_export_recommendations)

  rate = commands.add_parser("rate", help="predicted rating of a movie by a user")
  rate.add_argument("--user", required=True)
  rate.add_argument("--movie", required=True, help="Movie_ID or exact title")
  rate.add_argument("--model", default=DEFAULT_MODEL)
  rate.set_defaults(func=cmd_rate)

  kfp = commands.add_parser(
    "compile-kubeflow", help="compile the pipeline to a KFP v2 spec (Kubeflow / Vertex AI)"
  )
  kfp.add_argument("--output", required=True, help="pipeline spec JSON to write")
  kfp.add_argument("--data", required=True, help="data folder as the cluster sees it (gs://, PVC)")
  kfp.add_argument(
    "--pipeline-output",
    required=True,
    help="pipeline root, serving_model/ (gs://... or a PVC path)",
  )
  kfp.add_argument("--image", default=config_lib.KUBEFLOW_IMAGE, help="pipeline image (Dockerfile)")
  kfp.add_argument("--preset", default=DEFAULTS.preset, choices=sorted(config_lib.PRESETS))
  kfp.add_argument("--set", action="append", type=_parse_override, metavar="NAME=VALUE")
  kfp.add_argument(
    "--tune", action="append", type=_parse_tuning, metavar="NAME=[VALUES]", help=TUNE_HELP
  )
  kfp.add_argument(
    "--beam-runner",
    default=config_lib.KUBEFLOW_BEAM_RUNNER,
    choices=sorted(config_lib.BEAM_RUNNERS),
  )
  kfp.add_argument(
    "--beam-arg",
    action="append",
    metavar="--FLAG=VALUE",
    help="a flag for the Beam runner (repeat), e.g. --beam-arg=--project=P",
  )
  kfp.add_argument("--index", default=DEFAULTS.index_type, choices=contracts.INDEX_TYPES)
  kfp.add_argument(
    "--schema-file", help="curated schema as the cluster sees it (default: the one in the image)"
  )
  kfp.add_argument(
    "--distribution-strategy",
    default=DEFAULTS.distribution_strategy,
    choices=contracts.DISTRIBUTION_STRATEGIES,
  )
  kfp.set_defaults(func=cmd_compile_kubeflow)

  bench = commands.add_parser(
    "bench",
    help="measure the pipeline, the Trainer, serving (docs/performance.md) or model "
    "quality on real data (docs/results.md)",
  )
  bench.add_argument("benchmark", choices=sorted(BENCHMARKS))
  bench.add_argument(
    "options",
    nargs=argparse.REMAINDER,
    help="the benchmark's own options (nfrec bench NAME --help)",
  )
  bench.set_defaults(func=cmd_bench)

  sample = commands.add_parser("generate-sample", help="write a synthetic Netflix-layout sample")
  sample.add_argument("--output", required=True)
  sample.add_argument("--users", type=int, default=sample_lib.SampleSpec.num_users)
  sample.add_argument("--movies", type=int, default=sample_lib.SampleSpec.num_movies)
  sample.add_argument(
    "--ratings-per-user", type=float, default=sample_lib.SampleSpec.mean_ratings_per_user
  )
  sample.add_argument("--seed", type=int, default=sample_lib.SampleSpec.seed)
  sample.set_defaults(func=cmd_generate_sample)
  return parser


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
  logs.configure(args.verbose)
  try:
    return args.func(args)
  except (OSError, ValueError, LookupError) as error:  # SpanError is a ValueError
    print(f"nfrec {args.command}: error: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
