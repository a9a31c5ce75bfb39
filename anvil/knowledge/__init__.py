"""Knowledge-preservation benchmarks, each following EleutherAI lm-evaluation-harness's protocol so its
scores compare with published ones: a module per benchmark, pure (prompts, exemplars, extraction,
scoring); their registry is `registry.py`, their rows `data.py`."""
