"""Data: the data workbench (studio.datawork) over the form's current config.

Every button reads the form as it is now (instructions, group size, batch size, model), so the
preview and the lengths are those of the run the user is about to start. Large files are
streamed by the core (check) or sampled (lengths); the page never loads a whole file.
"""

from __future__ import annotations

from studio.app import actions, views
from studio.facts.i18n import t
from studio.webui import form_state

ID, TITLE = "data", "tab.data"


def stages(progress):
    """The core's progress callback (stage, done, total) as Gradio's progress bar."""
    return lambda stage, done, total: progress((done, total), desc=stage)


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    add = reg.add
    gr.Markdown(t("data_intro", lang))
    add(
        "data.paths",
        gr.Textbox(
            label=t("data_paths", lang),
            lines=2,
            elem_id="data-paths",
            placeholder="(the form's training data)",
        ),
    )
    with gr.Row():
        add("data.check", gr.Button(t("data_check", lang), variant="primary", elem_id="data-check"))
        add("data.stats", gr.Button(t("data_stats", lang), elem_id="data-stats"))
        add("data.preview", gr.Button(t("data_preview", lang), elem_id="data-preview"))
    add("data.report", gr.Markdown(elem_id="data-report"))
    add(
        "data.kinds",
        gr.Dataframe(
            headers=["level", "code", "count", "first"],
            interactive=False,
            wrap=True,
            label=t("data_kinds", lang),
        ),
    )
    add(
        "data.problems",
        gr.Dataframe(
            headers=list(views.PROBLEM_COLUMNS),
            interactive=False,
            wrap=True,
            label=t("data_problems", lang),
        ),
    )
    add("data.stats_text", gr.Markdown(elem_id="data-stats-summary"))
    add("data.files", gr.Dataframe(interactive=False, label=t("data_files", lang)))
    add("data.stats_plot", gr.Plot(elem_id="data-stats-plot"))
    add(
        "data.preview_table",
        gr.Dataframe(
            headers=[
                "file",
                "line",
                "query_raw",
                "query",
                "positive",
                "negatives",
                "rule",
                "notes",
            ],
            interactive=False,
            wrap=True,
            label=t("data_preview", lang),
            elem_id="data-preview-table",
        ),
    )
    with gr.Row():
        add("data.sample", gr.Number(2000, precision=0, minimum=10, label=t("data_sample", lang)))
        add("data.lengths", gr.Button(t("data_lengths", lang), elem_id="data-lengths"))
    add("data.lengths_table", gr.Dataframe(interactive=False, label=t("data_lengths", lang)))
    add("data.lengths_plot", gr.Plot(elem_id="data-lengths-plot"))
    add("data.difficulty", gr.Button(t("data_difficulty", lang), elem_id="data-difficulty"))
    add("data.difficulty_text", gr.Markdown())
    add("data.difficulty_plot", gr.Plot(elem_id="data-difficulty-plot"))
    with gr.Accordion(t("data_split", lang), open=False):
        with gr.Row():
            add("split.out", gr.Textbox(label=t("data_split_out", lang), value="data-split"))
            add("split.n", gr.Number(50, precision=0, minimum=1, label=t("data_split_n", lang)))
            add("split.seed", gr.Number(0, precision=0, label="seed"))
        add("split.button", gr.Button(t("data_split", lang)))
        add("split.result", gr.Markdown())
    with gr.Accordion(t("data_convert", lang), open=False):
        with gr.Row():
            add("convert.out", gr.Textbox(label=t("data_convert_out", lang), value="beir.jsonl"))
            add(
                "convert.min_grade",
                gr.Number(1, precision=0, minimum=1, label=t("data_convert_grade", lang)),
            )
        add("convert.button", gr.Button(t("data_convert", lang)))
        add("convert.result", gr.Markdown())
    with gr.Accordion(t("data_mine", lang), open=False):
        with gr.Row():
            add("mine.out", gr.Textbox(label=t("data_mine_out", lang), value="train.mined.jsonl"))
            add("mine.range_from", gr.Number(10, precision=0, minimum=0, label="range from"))
            add("mine.range_to", gr.Number(100, precision=0, minimum=1, label="range to"))
            add("mine.n", gr.Number(7, precision=0, minimum=1, label="negatives per row"))
        with gr.Row():
            add("mine.candidate_pool", gr.Textbox(label=t("data_mine_pool", lang)))
            add("mine.only_rows_lacking", gr.Checkbox(True, label=t("data_mine_lacking", lang)))
            add(
                "mine.max_neg_ratio",
                gr.Number(
                    0.95, minimum=0, maximum=1, label="drop negatives >= this share of the positive"
                ),
            )
        add("mine.button", gr.Button(t("data_mine", lang)))
        add("mine.result", gr.Markdown())
    with gr.Accordion(t("data_score", lang), open=False):
        with gr.Row():
            add(
                "score.out",
                gr.Textbox(
                    label=t("data_score_out", lang), value="train.scored.jsonl", elem_id="score-out"
                ),
            )
            add("score.model", gr.Textbox(label=t("data_score_model", lang), elem_id="score-model"))
        add("score.button", gr.Button(t("data_score", lang), elem_id="score-btn"))
        add("score.result", gr.Markdown(elem_id="score-result"))
    with gr.Accordion(t("data_adapt", lang), open=False):
        gr.Markdown(t("data_adapt_intro", lang))
        with gr.Row():
            add("adapt.corpus", gr.Textbox(label=t("data_pairs_corpus", lang)))
            add(
                "adapt.method",
                gr.Dropdown(["title", "crop"], value="title", label=t("data_pairs_method", lang)),
            )
            add("adapt.out", gr.Textbox(label="output folder", value="adapt"))
            add("adapt.max_steps", gr.Number(150, precision=0, minimum=1, label="max_steps"))
        add("adapt.button", gr.Button(t("data_adapt", lang)))
        add("adapt.result", gr.Markdown())
    with gr.Accordion(t("data_pairs", lang), open=False):
        with gr.Row():
            add("pairs.corpus", gr.Textbox(label=t("data_pairs_corpus", lang)))
            add(
                "pairs.method",
                gr.Dropdown(
                    ["title", "crop", "llm"], value="title", label=t("data_pairs_method", lang)
                ),
            )
            add("pairs.out", gr.Textbox(label=t("data_pairs_out", lang), value="pairs.jsonl"))
        with gr.Row():
            add("pairs.base_url", gr.Textbox(label=t("data_pairs_llm", lang)))
            add("pairs.model", gr.Textbox(label="model"))
            add("pairs.questions", gr.Number(1, precision=0, minimum=1, label="questions"))
            add("pairs.force", gr.Checkbox(False, label="replace / restart"))
        add("pairs.button", gr.Button(t("data_pairs", lang)))
        add("pairs.result", gr.Markdown())


def bind(ctx, reg, demo) -> None:
    import gradio as gr

    ws = ctx.ws

    def inputs(*cids):
        return {reg["data.paths"], *reg.many(*cids), *reg.form_inputs()}

    def form_and_paths(data):
        return form_state.read_config(reg, data)[0], data[reg["data.paths"]]

    def do_check(data):
        cfg, paths = form_and_paths(data)
        with form_state.shown_errors():
            report = actions.check_data(ws, cfg, paths)
        head = views.check_headline(report)
        kinds = [[r["level"], r["code"], r["count"], r["first"]] for r in report.table()]
        return {
            reg["data.report"]: head,
            reg["data.kinds"]: kinds,
            reg["data.problems"]: views.problem_rows(report.problems),
        }

    def do_stats(data):
        cfg, paths = form_and_paths(data)
        with form_state.shown_errors():
            result = actions.data_stats(ws, cfg, paths)
        body = views.facts_text(result.summary)
        if result.problems:
            body += "\n\n" + views.problems_text(result.problems)
        return {
            reg["data.stats_text"]: body,
            reg["data.files"]: result.files,
            reg["data.stats_plot"]: result.figure(),
        }

    def do_preview(data):
        cfg, paths = form_and_paths(data)
        with form_state.shown_errors():
            result = actions.preview(ws, cfg, paths)
        out = {reg["data.preview_table"]: [list(r.to_dict().values()) for r in result.rows]}
        if result.warnings:
            out[reg["data.report"]] = views.problems_text(result.warnings)
        return out

    def do_lengths(data):
        cfg, paths = form_and_paths(data)
        with form_state.shown_errors():
            result = actions.token_lengths(ws, cfg, paths, sample_size=data[reg["data.sample"]])
        return {
            reg["data.lengths_table"]: result.table(),
            reg["data.lengths_plot"]: result.figure(),
        }

    def do_difficulty(data):
        cfg, paths = form_and_paths(data)
        with form_state.shown_errors():
            result = actions.difficulty(
                ws, cfg, paths, sample_size=min(data[reg["data.sample"]], 1000)
            )
        return {
            reg["data.difficulty_text"]: views.difficulty_text(result),
            reg["data.difficulty_plot"]: result.figure(),
        }

    def file_action(prefix: str, action, tail=None, reports_progress=True):
        """A button that writes a new file from the data (split, mine, score): the action
        called with the section's inputs by name, its summary as a list."""

        def run(data, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
            cfg, paths = form_and_paths(data)
            options = reg.values(data, prefix)
            if reports_progress:
                options["progress"] = stages(progress)
            with form_state.shown_errors():
                result = action(ws, cfg, paths, **options)
            return views.facts_text(result.summary()) + (tail(result) if tail else "")

        run.__name__ = f"do_{prefix.rstrip('.')}"
        inputs = {*reg.section(prefix).values(), *reg.form_inputs(), reg["data.paths"]}
        inputs -= {reg[prefix + "button"], reg[prefix + "result"]}
        reg[prefix + "button"].click(run, inputs, reg[prefix + "result"])

    def score_tail(result) -> str:
        from studio.datawork import score

        lines = "".join(f"\n- {views.escape(p)}" for p in result.problems[:20])
        kd = score.kd_settings_text(result.out_path)
        return lines + f"\n\nTo distil from these scores, set:\n```yaml\n{kd}```"

    def do_pairs(data, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        with form_state.shown_errors():
            result = actions.make_pairs(ws, **reg.values(data, "pairs."), progress=stages(progress))
        return views.facts_text(result.summary()) + "".join(
            f"\n- {views.escape(p)}" for p in result.problems[:20]
        )

    def do_adapt(data, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        said: list[str] = []

        def say(line: str) -> None:
            said.append(line)
            progress(0, desc=line[:80])

        with form_state.shown_errors():
            result = actions.adapt(ws, **reg.values(data, "adapt."), say=say)
        steps = "\n".join(said)
        return f"```\n{steps}\n```\n\n" + views.adapt_text(result)

    adapt_inputs = set(reg.section("adapt.").values()) - set(
        reg.many("adapt.button", "adapt.result")
    )
    reg["adapt.button"].click(do_adapt, adapt_inputs, reg["adapt.result"])
    pairs_inputs = set(reg.section("pairs.").values()) - set(
        reg.many("pairs.button", "pairs.result")
    )
    reg["pairs.button"].click(do_pairs, pairs_inputs, reg["pairs.result"])

    def problems_tail(result) -> str:
        return "\n\n" + views.problems_text(result.problems, empty="")

    file_action("split.", actions.split_data, problems_tail, reports_progress=False)
    file_action("convert.", actions.convert_beir, problems_tail, reports_progress=False)
    file_action("mine.", actions.mine)
    file_action("score.", actions.score_data, score_tail)
    reg["data.check"].click(
        do_check, inputs(), reg.many("data.report", "data.kinds", "data.problems")
    )
    reg["data.stats"].click(
        do_stats, inputs(), reg.many("data.stats_text", "data.files", "data.stats_plot")
    )
    reg["data.preview"].click(do_preview, inputs(), reg.many("data.preview_table", "data.report"))
    reg["data.lengths"].click(
        do_lengths, inputs("data.sample"), reg.many("data.lengths_table", "data.lengths_plot")
    )
    reg["data.difficulty"].click(
        do_difficulty,
        inputs("data.sample"),
        reg.many("data.difficulty_text", "data.difficulty_plot"),
    )
