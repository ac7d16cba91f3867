"""The Gradio face of the studio: tabs that lay out components and call the core.

Nothing here computes what the core can: configs, commands, checks, runs, charts, data and
evaluation all come from `studio.*`. Per-browser state lives in `gr.State` /
`gr.BrowserState`; runs live on disk. Gradio is imported only when the UI is built.
"""
