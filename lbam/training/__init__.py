"""Training, evaluation and export of lbam weights. Never imported by the inference path."""
