"""The Data tab: the data workbench (studio.datawork) over the form's current config.

Every button reads the form as it is now (instructions, group size, batch size, model), so the
preview and the lengths are those of the run the user is about to start. Large files are
streamed by the core (check) or sampled (lengths); the page never loads a whole file.
"""

from __future__ import annotations

from pathlib import Path

from studio.i18n import t
from studio.problems import Problem


def _paths(text: str, cfg, base_dir: Path) -> list[str]:
    typed = [line.strip() for line in (text or "").splitlines() if line.strip()]
    chosen = typed or list(cfg.args.get("train_data") or [])
    return [str((base_dir / p).resolve()) for p in chosen]


def _problem_rows(problems: list[Problem]) -> list[list]:
    return [
        [p.level, p.file or "", p.line or "", p.field or "", p.message, p.fix] for p in problems
    ]


def build(ctx, reg, lang: str):
    import gradio as gr

    from studio import config as config_mod

    def current(values):
        *values, explicit = values
        cfg, _ = reg.config_from(values, explicit)
        return config_mod.resolve_paths(cfg, ctx.base_dir)

    gr.Markdown(t("data_intro", lang))
    paths = gr.Textbox(
        label=t("data_paths", lang),
        lines=2,
        elem_id="data-paths",
        placeholder="(the form's training data)",
    )
    with gr.Row():
        check_btn = gr.Button(t("data_check", lang), variant="primary", elem_id="data-check")
        stats_btn = gr.Button(t("data_stats", lang), elem_id="data-stats")
        preview_btn = gr.Button(t("data_preview", lang), elem_id="data-preview")
    report_md = gr.Markdown(elem_id="data-report")
    kinds = gr.Dataframe(
        headers=["level", "code", "count", "first"],
        interactive=False,
        wrap=True,
        label=t("data_kinds", lang),
    )
    problems = gr.Dataframe(
        headers=["level", "file", "line", "field", "message", "fix"],
        interactive=False,
        wrap=True,
        label=t("data_problems", lang),
    )
    stats_md = gr.Markdown(elem_id="data-stats-summary")
    files_df = gr.Dataframe(interactive=False, label=t("data_files", lang))
    stats_plot = gr.Plot(elem_id="data-stats-plot")
    preview_df = gr.Dataframe(
        headers=["file", "line", "query_raw", "query", "positive", "negatives", "rule", "notes"],
        interactive=False,
        wrap=True,
        label=t("data_preview", lang),
        elem_id="data-preview-table",
    )
    with gr.Row():
        sample = gr.Number(2000, precision=0, minimum=10, label=t("data_sample", lang))
        lengths_btn = gr.Button(t("data_lengths", lang), elem_id="data-lengths")
    lengths_df = gr.Dataframe(interactive=False, label=t("data_lengths", lang))
    lengths_plot = gr.Plot(elem_id="data-lengths-plot")
    with gr.Accordion(t("data_split", lang), open=False):
        with gr.Row():
            split_out = gr.Textbox(label=t("data_split_out", lang), value="data-split")
            split_n = gr.Number(50, precision=0, minimum=1, label=t("data_split_n", lang))
            split_seed = gr.Number(0, precision=0, label="seed")
        split_btn = gr.Button(t("data_split", lang))
        split_md = gr.Markdown()
    with gr.Accordion(t("data_mine", lang), open=False):
        with gr.Row():
            mine_out = gr.Textbox(label=t("data_mine_out", lang), value="train.mined.jsonl")
            mine_from = gr.Number(10, precision=0, minimum=0, label="range from")
            mine_to = gr.Number(100, precision=0, minimum=1, label="range to")
            mine_n = gr.Number(7, precision=0, minimum=1, label="negatives per row")
        with gr.Row():
            mine_pool = gr.Textbox(label=t("data_mine_pool", lang))
            mine_lacking = gr.Checkbox(True, label=t("data_mine_lacking", lang))
        mine_btn = gr.Button(t("data_mine", lang))
        mine_md = gr.Markdown()

    with gr.Accordion(t("data_score", lang), open=False):
        with gr.Row():
            score_out = gr.Textbox(
                label=t("data_score_out", lang), value="train.scored.jsonl", elem_id="score-out"
            )
            score_model = gr.Textbox(label=t("data_score_model", lang), elem_id="score-model")
        score_btn = gr.Button(t("data_score", lang), elem_id="score-btn")
        score_md = gr.Markdown(elem_id="score-result")

    form_inputs = [*reg.inputs(), reg.explicit]

    def do_check(text, *values):
        from studio.datawork import check

        cfg = current(values)
        report = check.check_paths(
            _paths(text, cfg, ctx.base_dir),
            knowledge_distillation=bool(cfg.args.get("knowledge_distillation")),
            train_group_size=cfg.args.get("train_group_size"),
        )
        head = (
            f"**{report.rows:,} rows** in {len(report.files)} file(s): "
            f"**{report.error_count} error(s)**, {report.warning_count} warning(s)."
        )
        kinds_rows = [[r["level"], r["code"], r["count"], r["first"]] for r in report.table()]
        return head, kinds_rows, _problem_rows(report.problems)

    def do_stats(text, *values):
        from studio.datawork import stats

        cfg = current(values)
        result = stats.stats(_paths(text, cfg, ctx.base_dir), cfg)
        lines = [
            f"- **{k}**: {v}" for k, v in result.summary.items() if not isinstance(v, dict | list)
        ]
        body = "\n".join(lines)
        if result.problems:
            body += "\n\n" + "\n".join(f"- {p}" for p in result.problems)
        return body, result.files, result.figure()

    def do_preview(text, *values):
        from studio.datawork import instructions

        cfg = current(values)
        data = _paths(text, cfg, ctx.base_dir)
        rows = instructions.preview(cfg, n=8, paths=data)
        warnings = instructions.format_warnings(cfg.with_args(train_data=data))
        table = [list(r.to_dict().values()) for r in rows]
        note = "\n".join(f"- {p}" for p in warnings) if warnings else ""
        return table, note or gr.skip()

    def do_lengths(text, size, *values):
        from studio.datawork import tokens

        cfg = current(values)
        result = tokens.token_lengths(
            cfg,
            sample_size=int(size or 2000),
            paths=_paths(text, cfg, ctx.base_dir),
            base_dir=ctx.base_dir,
        )
        return result.table(), result.figure()

    def do_split(text, out, n, seed, *values):
        from studio.datawork import split

        cfg = current(values)
        data = _paths(text, cfg, ctx.base_dir)
        if len(data) != 1:
            raise gr.Error("Split works on one file: give its path above.")
        try:
            result = split.split(data[0], ctx.base_dir / out, int(n), int(seed or 0))
        except (FileExistsError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        return "\n".join(f"- **{k}**: {v}" for k, v in result.summary().items())

    def do_mine(text, out, lo, hi, n, pool, lacking, *values, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        from studio.datawork import mining

        cfg = current(values)
        data = _paths(text, cfg, ctx.base_dir)
        if len(data) != 1:
            raise gr.Error("Mining works on one file: give its path above.")

        def report(stage: str, done: int, total: int) -> None:
            progress((done, total), desc=stage)

        try:
            result = mining.mine(
                data[0],
                ctx.base_dir / out,
                None,
                int(lo),
                int(hi),
                int(n),
                candidate_pool=pool or None,
                only_rows_lacking=bool(lacking),
                config=cfg,
                base_dir=ctx.base_dir,
                progress=report,
            )
        except (FileExistsError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        return "\n".join(f"- **{k}**: {v}" for k, v in result.summary().items())

    def do_score(text, out, model, *values, progress=gr.Progress()):  # noqa: B008 - Gradio
        from studio.datawork import score

        cfg = current(values)
        data = _paths(text, cfg, ctx.base_dir)
        if len(data) != 1:
            raise gr.Error("Scoring works on one file: give its path above.")
        try:
            scorer = score.make_scorer(
                model or cfg.get("model_name_or_path") or "", cfg, ctx.base_dir
            )
            result = score.score_file(
                data[0],
                ctx.base_dir / out,
                scorer,
                progress=lambda stage, done, total: progress((done, total), desc=stage),
            )
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise gr.Error(str(exc)) from None
        lines = [f"- **{k}**: {v}" for k, v in result.summary().items()]
        lines += [f"- {p}" for p in result.problems[:20]]
        kd = score.kd_settings_text(result.out_path)
        return "\n".join(lines) + f"\n\nTo distil from these scores, set:\n```yaml\n{kd}```"

    score_btn.click(do_score, [paths, score_out, score_model, *form_inputs], score_md)
    check_btn.click(do_check, [paths, *form_inputs], [report_md, kinds, problems])
    stats_btn.click(do_stats, [paths, *form_inputs], [stats_md, files_df, stats_plot])
    preview_btn.click(do_preview, [paths, *form_inputs], [preview_df, report_md])
    lengths_btn.click(do_lengths, [paths, sample, *form_inputs], [lengths_df, lengths_plot])
    split_btn.click(do_split, [paths, split_out, split_n, split_seed, *form_inputs], split_md)
    mine_btn.click(
        do_mine,
        [paths, mine_out, mine_from, mine_to, mine_n, mine_pool, mine_lacking, *form_inputs],
        mine_md,
    )
