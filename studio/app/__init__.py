"""Layer 8, actions and words: every user action as one function over a ``Workspace``
(``actions``), and the one text of each result (``views``), under every face.
"""
