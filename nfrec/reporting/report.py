"""`<output>/report.html`: one page per run, for people.

Built from the run summary (read back from ML-Metadata) and the artifacts it
points to: the gate's verdict, the model beside the last blessed model and the
baselines, the data as TFDV described it (plus TFDV's own Facets view in
`statistics.html`), anomalies, and plots: rating distribution, training curves,
RMSE by user activity, recall@K. Plots are matplotlib PNGs inlined, so the page
is one file that can be mailed or attached to a review.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402

from nfrec import contracts  # noqa: E402

REPORT_FILE = "report.html"
STATISTICS_FILE = "statistics.html"


def _png(figure) -> str:
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
  plt.close(figure)
  return '<img src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'


def metrics_rows(summary: dict) -> list[tuple[str, dict]]:
  """(row name, {metric: value}) for the model, the last blessed model and the baselines."""
  retrieval = summary.get("retrieval_evaluation", {})
  evaluator = summary.get("evaluator_metrics", {})
  model = dict(retrieval.get("model", {}))
  model.update(
    {
      contracts.RMSE: evaluator.get(contracts.TFMA_RMSE, model.get(contracts.RMSE)),
      contracts.MAE: evaluator.get(contracts.TFMA_MAE, model.get(contracts.MAE)),
    }
  )
  rows = [("this model", model)]
  if retrieval.get("baseline_model"):
    rows.append(("last blessed model", retrieval["baseline_model"]))
  rows.append(("most popular", retrieval.get("most_popular", {})))
  for name, values in retrieval.get("rating_baselines", {}).items():
    rows.append((name.replace("_", " "), values))
  return rows


def _metrics_table(summary: dict) -> str:
  head = "".join(f"<th>{label}</th>" for label in contracts.METRIC_LABELS.values())
  body = ""
  for name, values in metrics_rows(summary):
    cells = "".join(
      f"<td>{values[key]:.4f}</td>" if values.get(key) is not None else "<td></td>"
      for key in contracts.METRIC_LABELS
    )
    body += f"<tr><th>{html.escape(name)}</th>{cells}</tr>"
  return f"<table><tr><th></th>{head}</tr>{body}</table>"


def new_user_rows(summary: dict) -> list[tuple[str, dict]]:
  """(row name, {metric: value}) of the new-user protocol: the model answering from
  the ratings given at request time, beside most popular (docs/metrics.md)."""
  new = summary.get("retrieval_evaluation", {}).get("new_users") or {}
  return [
    (name, new[key])
    for key, name in (("model", "this model"), ("most_popular", "most popular"))
    if key in new
  ]


def _table(rows: list[tuple[str, dict]], columns: dict) -> str:
  head = "".join(f"<th>{html.escape(label)}</th>" for label in columns.values())
  body = ""
  for name, values in rows:
    cells = "".join(
      f"<td>{values[key]:.4f}</td>"
      if isinstance(values.get(key), float)
      else f"<td>{html.escape(str(values.get(key, '')))}</td>"
      for key in columns
    )
    body += f"<tr><th>{html.escape(name)}</th>{cells}</tr>"
  return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _new_users_section(summary: dict) -> str:
  rows = new_user_rows(summary)
  if not rows:
    return ""
  users = summary["retrieval_evaluation"]["new_users"].get("users", 0)
  columns = {
    key: contracts.METRIC_LABELS[key]
    for key in (contracts.recall_at(10), contracts.ndcg_at(10), contracts.RMSE, contracts.MAE)
  }
  return (
    "<h2>New users</h2>"
    f"<p>{users:,} users the model never saw in training; the first half of each one's "
    "ratings is given at request time (<code>recommend_from_ratings</code>, "
    "<code>predict_rating_from_ratings</code>), the rest is scored.</p>" + _table(rows, columns)
  )


def _activity_section(summary: dict) -> str:
  model = summary.get("retrieval_evaluation", {}).get("model", {})
  by_recall = {b["known_ratings"]: b for b in model.get("recall_by_activity", [])}
  by_rmse = {b["known_ratings"]: b for b in model.get("rmse_by_activity", [])}
  if not by_recall and not by_rmse:
    return ""
  rows = [
    (f"{bucket} known ratings", {**by_rmse.get(bucket, {}), **by_recall.get(bucket, {})})
    for bucket in dict.fromkeys([*by_rmse, *by_recall])
  ]
  columns = {
    "users": "users",
    "eval_pairs": "eval pairs",
    contracts.recall_at(10): contracts.METRIC_LABELS[contracts.recall_at(10)],
    contracts.ndcg_at(10): contracts.METRIC_LABELS[contracts.ndcg_at(10)],
    contracts.RMSE: contracts.METRIC_LABELS[contracts.RMSE],
  }
  return "<h2>Light and heavy users (eval split)</h2>" + _table(rows, columns)


def _plots(summary: dict) -> list[str]:
  retrieval = summary.get("retrieval_evaluation", {})
  plots = []
  counts = retrieval.get("rating_counts")
  if counts:
    figure, axis = plt.subplots(figsize=(4.5, 3))
    # Side by side: one bar per split at each rating value (half stars: half the width).
    width = (0.8 if all(len(values) <= 5 for values in counts.values()) else 0.4) / len(counts)
    for position, (split, values) in enumerate(counts.items()):
      total = sum(values.values())
      offset = (position - (len(counts) - 1) / 2) * width
      axis.bar(
        [float(k) + offset for k in values],
        [v / total for v in values.values()],
        width=width,
        label=split,
      )
    axis.set(title="Rating distribution", xlabel="rating", ylabel="share")
    axis.legend()
    plots.append(_png(figure))
  history = summary.get("training_history")
  if history:
    figure, axes = plt.subplots(1, 2, figsize=(9, 3))
    for name in ("loss", "val_loss"):
      if name in history:
        axes[0].plot(range(1, len(history[name]) + 1), history[name], label=name)
    for name in (contracts.RMSE, "val_" + contracts.RMSE):
      if name in history:
        axes[1].plot(range(1, len(history[name]) + 1), history[name], label=name)
    axes[0].set(title="Training loss", xlabel="epoch")
    axes[1].set(title="Rating RMSE", xlabel="epoch")
    axes[0].legend()
    axes[1].legend()
    plots.append(_png(figure))
  buckets = retrieval.get("model", {}).get("rmse_by_activity")
  if buckets:
    figure, axis = plt.subplots(figsize=(4.5, 3))
    axis.bar([b["known_ratings"] for b in buckets], [b[contracts.RMSE] for b in buckets])
    for name, values in retrieval.get("rating_baselines", {}).items():
      axis.axhline(
        values[contracts.RMSE],
        linestyle="--",
        color="gray" if "mean" in name else "black",
        label=f"{name.replace('_', ' ')} (all users)",
      )
    axis.set(title="RMSE by user activity", xlabel="user's known ratings", ylabel="RMSE")
    axis.legend(fontsize=7)
    plots.append(_png(figure))
  if retrieval.get("model", {}).get("recall_curve"):
    figure, axis = plt.subplots(figsize=(4.5, 3))
    for name, label in (
      ("model", "this model"),
      ("baseline_model", "last blessed"),
      ("most_popular", "most popular"),
    ):
      curve = retrieval.get(name, {}).get("recall_curve")
      if curve:
        axis.plot([int(k) for k in curve], list(curve.values()), marker="o", label=label)
    axis.set(title="Recall@K (filtered)", xlabel="K", ylabel="recall", xscale="log")
    axis.legend()
    plots.append(_png(figure))
  return plots


def _statistics_table(statistics_uri: str) -> tuple[str, str]:
  """(summary table HTML, TFDV's Facets HTML) of the ratings statistics."""
  import tensorflow_data_validation as tfdv
  from tensorflow_data_validation.utils import display_util

  rows, facets = "", ""
  for split in contracts.SPLITS:
    path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
    if not os.path.exists(path):
      continue
    stats = tfdv.load_stats_binary(path)
    if split == contracts.TRAIN:
      facets = display_util.get_statistics_html(stats)
    for feature in stats.datasets[0].features:
      numeric = feature.num_stats
      common = numeric.common_stats
      rows += (
        f"<tr><td>{split}</td><td>{html.escape(feature.path.step[0])}</td>"
        f"<td>{common.num_non_missing:,}</td><td>{common.num_missing:,}</td>"
        f"<td>{numeric.min:g}</td><td>{numeric.max:g}</td><td>{numeric.mean:.3f}</td></tr>"
      )
  table = (
    "<table><tr><th>split</th><th>feature</th><th>present</th><th>missing</th>"
    f"<th>min</th><th>max</th><th>mean</th></tr>{rows}</table>"
  )
  return table, facets


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}img{margin:4px}.bad{color:#a00}.good{color:#070}"""


def write(output_dir: str, summary: dict) -> str:
  """Writes report.html (and statistics.html) into `output_dir`; returns the report path."""
  verdict = (
    '<p class="good">Blessed'
    + (
      " and pushed to " + html.escape(summary["pushed_to"])
      if summary.get("pushed")
      else " (the same model is already served)"
    )
    + "</p>"
    if summary.get("blessed")
    else '<p class="bad">Not blessed; the served model is unchanged:</p><ul>'
    + "".join(f"<li>{html.escape(r)}</li>" for r in summary.get("gate_reasons", []))
    + "</ul>"
  )
  data = summary.get("data", {})
  anomalies = {split: items for split, items in summary.get("anomalies", {}).items() if items}
  statistics, facets = (
    _statistics_table(summary["statistics_uri"]) if summary.get("statistics_uri") else ("", "")
  )
  if facets:
    with open(os.path.join(output_dir, STATISTICS_FILE), "w") as f:
      f.write(facets)
  components = "".join(
    f"<tr><td>{html.escape(name)}</td><td>{info['state']}</td><td>{info['seconds']:.1f}</td></tr>"
    for name, info in summary.get("components", {}).items()
  )
  parts = [
    f"<h1>Run report: {html.escape(summary.get('pipeline', ''))}</h1>",
    f"<p>data {html.escape(summary.get('data_dir', ''))}, preset "
    f"<b>{html.escape(summary.get('preset', ''))}</b>, "
    f"wall time {summary.get('wall_time_s')} s</p>",
    verdict,
    "<h2>Metrics on the eval split</h2>",
    "<p>The eval split is the known users' future (docs/metrics.md). Rating metrics of the "
    "model are TFMA's, on the serving signature. Recall and NDCG are filtered (the user's "
    "known movies excluded; relevant = rated 4 or more); top-K accuracy excludes nothing "
    "(the seed's metric).</p>",
    _metrics_table(summary),
    _activity_section(summary),
    _new_users_section(summary),
    "<h2>Plots</h2>",
    "".join(_plots(summary)),
    "<h2>Data</h2>",
    f"<p>{json.dumps(data)}</p>",
    "<p>Anomalies (TFDV ExampleValidator): "
    f"{html.escape(json.dumps(anomalies)) if anomalies else 'none'}</p>",
    statistics,
    f'<p>TFDV\'s full statistics view: <a href="{STATISTICS_FILE}">{STATISTICS_FILE}</a></p>'
    if facets
    else "",
    "<h2>Training</h2>",
    "<p>TensorBoard: <code>tensorboard --logdir "
    f"{html.escape(summary.get('tensorboard_logdir', ''))}</code></p>",
    f"<h2>Steps</h2><table><tr><th>component</th><th>state</th><th>s</th></tr>{components}</table>",
  ]
  path = os.path.join(output_dir, REPORT_FILE)
  with open(path, "w") as f:
    f.write(
      f"<!doctype html><html><head><meta charset='utf-8'><title>Run report</title>"
      f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
  return path
