"""The form mapping shared by the web UI and the notebook: widget values <-> config."""

from __future__ import annotations

from studio.core import config, form


def test_quickstart_round_trips_through_the_widgets():
    cfg = config.load("example_data/quickstart.yaml")
    values, launch = form.config_to_values(cfg), form.config_to_launch(cfg)
    back, problems = form.values_to_config(
        values, launch, studio=cfg.studio, explicit=tuple(cfg.args)
    )
    assert not problems
    assert back.args == cfg.args and back.studio == cfg.studio
    assert back.deepspeed == cfg.deepspeed and back.torchrun == cfg.torchrun


def test_whole_numbers_from_number_widgets_stay_whole():
    values = form.config_to_values(config.StudioConfig())
    values["save_steps"] = 4.0
    cfg, _ = form.values_to_config(values, form.config_to_launch(config.StudioConfig()))
    assert cfg.args["save_steps"] == 4 and isinstance(cfg.args["save_steps"], int)


def test_a_bad_widget_value_is_a_problem_at_its_field():
    values = form.config_to_values(config.StudioConfig())
    values["mrl_dims"] = "64 big"
    _, problems = form.values_to_config(values, form.config_to_launch(config.StudioConfig()))
    assert [p.field for p in problems] == ["mrl_dims"]
    assert form.field_error("mrl_dims", "64 big") and not form.field_error("mrl_dims", "64 128")
