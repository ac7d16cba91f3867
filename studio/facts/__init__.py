"""Layer 1, facts and contracts: FlagEmbedding's fine-tune modules (``modules/``, one file
each) and flags (``schema``), the one Problem type, words (``labels``, ``i18n``), a run
folder's files and status record, which data files count, the hardware seen, secrets to mask.
No UI, no processes; imports nothing else of the studio.
"""
