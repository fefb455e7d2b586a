"""crossrank.pipeline.evaluation: ranking quality over BEIR folders (`crossrank eval`)."""
