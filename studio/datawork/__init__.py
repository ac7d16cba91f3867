"""The data workbench: check training data, describe it, preview it, split it, mine negatives.

FlagEmbedding reads training data lazily, so a bad row crashes a run hours in. Everything here
reads the data exactly as FlagEmbedding does (:mod:`studio.facts.datafiles` decides which files
count), streams it line by line so a large file is never held whole, and returns data — a report, a
DataFrame, a Plotly figure — that the CLI, the web UI and the notebook show in their own way.

Modules, each owning one job:

``rows``          reading rows from files: lines or JSON arrays, uniform samples, key census
``check``         the streaming line-by-line checker (also gathers the numbers ``stats`` needs)
``stats``         statistics over a check report: distributions, duplicates, leakage, steps
``instructions``  the exact text the model sees, and the instruction-format traps
``tokens``        token lengths with the model's tokenizer, truncation shares, suggestions
``split``         holding out an evaluation set in BEIR layout
``beir``          reading and writing that layout (corpus, queries, qrels)
``encoder``       embedding texts with the config's model and pooling
``convert``       BEIR judgments -> training rows
``mining``        hard-negative mining with faiss (false-negative filter, never a row's own document)
``score``         teacher scores for distillation, resumable onto its own input only
``pairs``         training pairs from documents (title, crop); ``llm_pairs`` questions from an LLM
``doc_split``     holding out whole documents of such pairs
``difficulty``    how hard the negatives are: too easy (loss ~0) or near-copies of the positive

Importing this package is cheap: heavy libraries are imported inside the functions that use them.
"""
