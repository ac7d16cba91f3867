"""The Gradio app: the tabs of :mod:`studio.webui.tabs` laid out, then bound, over one context.

Per-browser state: the watched run (`gr.State`, plus its name in `gr.BrowserState` so a page
reload re-attaches) and the keys and module of the last loaded config (`gr.State`). Runs are
read from disk, so several browsers — or a restarted studio — see the same runs, and nobody's
click overrides another's form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from studio.app import actions
from studio.core import config as config_mod
from studio.core.config import StudioConfig
from studio.facts import labels
from studio.facts.i18n import t
from studio.webui.form_state import loaded_state
from studio.webui.registry import LOADED, Registry

CSS = """
.studio-invalid input, .studio-invalid textarea { border-color: #e5484d !important; }
.studio-invalid .info, .studio-invalid span[data-testid="block-info"] + div { color: #e5484d; }
#studio-progress .bar { height: 14px; background: #e8e8ef; border-radius: 7px; overflow: hidden; }
#studio-progress .fill { height: 100%; background: #636efa; }
"""


@dataclass
class AppContext:
    runs_dir: Path
    base_dir: Path
    lang: str = "en"
    initial: StudioConfig | None = None

    @cached_property
    def ws(self) -> actions.Workspace:
        """What every action reads: the runs folder and the folder paths are relative to."""
        return actions.Workspace(Path(self.runs_dir), Path(self.base_dir))

    @cached_property
    def config(self) -> StudioConfig:
        """The form's starting config."""
        return self.initial or StudioConfig()


def switch_language(reg: Registry, lang: str) -> dict:
    """Every label (and button text) of the page in `lang`."""
    import gradio as gr

    out = {comp: gr.update(label=labels.field_label(n, lang)) for n, comp in reg.form.items()}
    for comp, key in reg.texts:
        if isinstance(comp, gr.Button | gr.DownloadButton):
            out[comp] = gr.update(value=t(key, lang))
        elif isinstance(comp, gr.Markdown):
            out[comp] = gr.update(value=f"### {t(key, lang)}")
        else:
            out[comp] = gr.update(label=t(key, lang))
    return out


def build_app(ctx: AppContext):
    """The whole studio as a gr.Blocks (not launched)."""
    import gradio as gr

    from studio.webui.tabs import TABS

    lang = ctx.lang
    reg = Registry()
    with gr.Blocks(title="BGE Studio") as demo:
        reg.add(LOADED, gr.State(loaded_state(ctx.config)))
        reg.add("session.watcher", gr.State(None))
        reg.add("session.stored_run", gr.BrowserState(None, storage_key="bge-studio-watched-run"))
        with gr.Row():
            gr.Markdown(f"# {t('title', lang)}\n{t('subtitle', lang)}")
            language = gr.Radio(
                ["en", "zh"],
                value=lang,
                label=t("language", lang),
                elem_id="studio-lang",
                scale=0,
                min_width=160,
            )
        with gr.Tabs():
            for tab in TABS:
                with gr.Tab(t(tab.TITLE, lang), id=tab.ID):
                    tab.layout(ctx, reg, lang)
        for tab in TABS:
            tab.bind(ctx, reg, demo)
        translated = [*reg.form.values(), *(c for c, _ in reg.texts)]
        language.change(lambda value: switch_language(reg, value), language, translated)
    # The page's events are its wiring, not an API: each carries ~160 form inputs, and listing
    # them made the page 10 MB and showed config defaults to anyone before the login.
    for fn in demo.fns.values():
        fn.api_visibility = "private"
    demo.registry = reg  # for tests and embedding: every component by id
    return demo


def initial_config(path: str | Path | None, base_dir: Path) -> StudioConfig:
    """The form's starting point: a config file, else the embedded quickstart default."""
    return config_mod.default_config(path)


__all__ = ["CSS", "AppContext", "build_app", "initial_config", "switch_language"]
