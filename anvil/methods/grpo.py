"""grpo: Group Relative Policy Optimization on prompt rows, through mlx-lm-lora's GRPO trainer: each prompt
answered `group_size` times by sampling, each answer scored by the recipe's reward (methods/rewards.py), the
policy pushed towards the answers that beat their group, held near the parent (its fused weights, loaded a
second time as the reference: memory counts it) by a KL penalty.

Per step it records what a reinforcement round is judged by: the reward's mean and spread, the KL to the
parent, the answers' length, and the share of groups whose answers all scored alike (no signal: nothing to
learn from). Before and after, it measures the reward on the held-out prompts (one greedy answer each): the
figure the reward-hacking guard compares with the gated evaluation."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anvil.errors import AnvilError
from anvil.methods import rewards
from anvil.methods.method import Session, split_rows, trainer_args
from anvil.methods.rewards import Grpo
from anvil.recipe.base import Strict

NAME = "grpo"
ROWS = "prompt"
SETTINGS: type[Strict] | None = Grpo
TABLE: str | None = "grpo"
TABLE_REQUIRED = True
SETTINGS_FIELDS: frozenset[str] | None = None
DISTRIBUTED = False
REFERENCE = True
STEPS = "steps.json"  # the per-step figures, beside the adapter
JUDGE = "judge"  # the held-out score of a judge reward's judge, beside each panel member's


def per_row(settings: Mapping[str, Any] | None) -> tuple[int, int]:
    """A group of answers per prompt, each sampled to at most max_completion_length tokens, then trained on."""
    s = settings or {}
    return s.get("group_size", 4), s.get("max_completion_length", 64)


def problem(settings: Strict | None) -> str | None:
    return rewards.problem(settings) if isinstance(settings, Grpo) else None


def prompt_of(row: dict[str, Any]) -> list[dict[str, str]]:
    system = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return [*system, {"role": "user", "content": row["prompt"]}]


class GrpoTrainer:
    def __init__(self, session: Session):
        from mlx_lm import load

        self.session, self.settings = session, session.settings
        self.grpo = session.extra if isinstance(session.extra, Grpo) else None
        if self.grpo is None:
            raise AnvilError("a grpo round needs its `grpo` table (the reward)")
        self.train_set = [self._example(row) for row in split_rows(session.data, "train")]
        if len(self.train_set) < self.settings.batch_size:
            raise AnvilError(f"train.jsonl has {len(self.train_set)} prompts, fewer than batch_size")
        self.reference, _ = load(session.parent)  # the parent's fused weights: the model the round starts from
        self.reference.freeze()
        self.no_signal: list[float] = []  # each scored batch's share of groups with one reward for all

    def _example(self, row: dict[str, Any]) -> tuple:
        """What mlx-lm-lora's GRPO batches hold: the prompt's tokens (the chat template, the row's own system
        prompt or none: not mlx-lm-lora's default one), and the row itself as the `answer` the reward reads."""
        tokens = self.session.tokenizer.apply_chat_template(prompt_of(row), add_generation_prompt=True, tokenize=True)
        carried = json.dumps(row, ensure_ascii=False)
        return (tokens, self.session.tokenizer.encode(carried), row["prompt"], carried, None)

    def reward(self, prompts: list[str], completions: list[str], answer: list[str], types=None) -> list[float]:
        """The recipe's reward of each sampled answer; notes the share of groups without signal."""
        assert self.grpo is not None
        rows = [json.loads(a) for a in answer]
        verdicts = judged(self.session, self.grpo, rows, completions)
        scores = [
            rewards.total(self.grpo, c, row, {ref: v.score for ref, v in found.items()})
            for c, row, found in zip(completions, rows, verdicts, strict=True)
        ]
        groups: dict[str, set[float]] = {}
        for a, s in zip(answer, scores, strict=True):
            groups.setdefault(a, set()).add(round(s, 9))
        self.no_signal.append(sum(len(g) == 1 for g in groups.values()) / max(len(groups), 1))
        return scores

    def validate(self, model: Any) -> float | None:
        return None  # no loss to hold out: the held-out reward is measured before and after (`measure`)

    def train(self, model: Any, optimizer: Any, done: int, recorder: Any) -> None:
        from mlx_lm_lora.trainer import grpo_trainer

        g = self.grpo
        assert g is not None
        args = grpo_trainer.GRPOTrainingArgs(
            **trainer_args(self.settings, done),
            group_size=g.group_size,
            beta=g.beta,
            max_completion_length=g.max_completion_length,
            temperature=g.temperature,
            grpo_loss_type=g.loss_type,
        )
        with self.session.guarded(grpo_trainer):
            grpo_trainer.train_grpo(
                model,
                self.reference if g.beta > 0 else None,
                self.session.tokenizer,
                optimizer,
                self.train_set,
                None,
                reward_funcs=[self.reward],
                args=args,
                training_callback=_Figures(recorder, self.no_signal),
            )


class _Figures:
    """The recorder, told each step's reinforcement figures beside its loss."""

    def __init__(self, recorder: Any, no_signal: list[float]):
        self.recorder, self.no_signal = recorder, no_signal

    def on_train_loss_report(self, info: dict) -> None:
        shares, self.no_signal[:] = list(self.no_signal), []
        figures = {
            "reward_mean": info.get("train_total_rewards_mean"),
            "reward_std": info.get("train_total_rewards_std"),
            "kl": info.get("train_kl"),
            "completion_tokens": info.get("train_average_generated_tokens"),
            "no_signal": sum(shares) / len(shares) if shares else None,
        }
        self.recorder.on_train_loss_report(info | {"figures": {k: _plain(v) for k, v in figures.items()}})

    def on_val_loss_report(self, info: dict) -> None:
        pass


def _plain(value: Any) -> float | None:
    return None if value is None else round(float(value), 5)


def judged(session: Session, settings: Grpo, rows: list[dict[str, Any]], answers: list[str]) -> list[dict[str, Any]]:
    """Each answer's verdicts by the judge terms' tests (SUITE/TEST -> verdict), all asked at once; {} each
    without judge terms."""
    refs = [t.test for t in settings.judged() if t.test]
    if not refs:
        return [{} for _ in answers]
    if session.judge is None:
        raise AnvilError("a judge reward needs the recipe's judge (the train stage passes it to the child)")
    asks = [(ref, transcript(row, answer)) for row, answer in zip(rows, answers, strict=True) for ref in refs]
    verdicts = iter(session.judge(asks))
    return [{ref: next(verdicts) for ref in refs} for _ in answers]


def transcript(row: dict[str, Any], answer: str) -> dict[str, Any]:
    """A sampled answer as the judges read a suite's transcripts (evaluation/agent.py)."""
    messages = [*prompt_of(row), {"role": "assistant", "content": answer}]
    return {"messages": messages, "final": answer, "tools_called": [], "turn_limit_hit": False}


def measure(session: Session) -> dict[str, Any]:
    """The reward of one greedy answer to each held-out prompt; with a judge reward, also the judge's score
    (0-5, the mean over its terms) and, of a panel, each member's: the second judges the guard asks."""
    from mlx_lm import generate

    settings = session.extra if isinstance(session.extra, Grpo) else None
    assert settings is not None
    rows, answers = split_rows(session.data, "valid"), []
    for row in rows:
        prompt = session.tokenizer.apply_chat_template(prompt_of(row), add_generation_prompt=True, tokenize=False)
        answers.append(generate(session.model, session.tokenizer, prompt, max_tokens=settings.max_completion_length))
    verdicts = judged(session, settings, rows, answers)
    scores = [
        rewards.total(settings, answer, row, {ref: v.score for ref, v in found.items()})
        for row, answer, found in zip(rows, answers, verdicts, strict=True)
    ]
    measured: dict[str, Any] = {"held_out_rewards": scores}
    if settings.judged():
        judges = {JUDGE: [statistics.fmean(v.score for v in found.values()) for found in verdicts]}
        for i, member in enumerate(getattr(session.judge, "members", [])):
            judges[member] = [statistics.fmean(v.panel[i] for v in found.values()) for found in verdicts]
        measured["held_out_judges"] = judges
    return measured


def trainer(session: Session) -> GrpoTrainer:
    return GrpoTrainer(session)


def results(before: dict[str, Any] | None, after: dict[str, Any] | None, out: Path) -> dict[str, Any]:
    """The held-out reward before and after, paired prompt by prompt (a sign test on those that moved), and
    the per-step figures' first and last."""
    mine, theirs = (after or {}).get("held_out_rewards", []), (before or {}).get("held_out_rewards", [])
    metrics: dict[str, Any] = {"method": NAME}
    if mine and len(mine) == len(theirs):
        moved = _paired(theirs, mine)
        metrics |= {
            "held_out_prompts": len(mine),
            "held_out_reward_before": moved["before"],
            "held_out_reward_after": moved["after"],
            "held_out_improved": moved["improved"],
            "held_out_worsened": moved["worsened"],
            "held_out_p_value": moved["p_value"],
        }
    judges_before, judges_after = ((m or {}).get("held_out_judges", {}) for m in (before, after))
    if judges_after:  # the judge's own score (0-5) and each panel member's, before and after
        metrics["held_out_judges"] = {
            name: _paired(judges_before[name], scores)
            for name, scores in judges_after.items()
            if len(judges_before.get(name, [])) == len(scores)
        }
    steps = json.loads((out / STEPS).read_text()) if (out / STEPS).exists() else []
    for key in ("reward_mean", "kl", "completion_tokens", "no_signal"):
        values = [s[key] for s in steps if s.get(key) is not None]
        if values:
            metrics[f"{key}_first"], metrics[f"{key}_last"] = values[0], values[-1]
    return metrics


def _paired(before: list[float], after: list[float]) -> dict[str, Any]:
    """Held-out scores before and after, paired prompt by prompt: the means, the prompts that moved, and the
    sign test on them."""
    pairs = list(zip(after, before, strict=True))
    up, down = sum(a > b for a, b in pairs), sum(a < b for a, b in pairs)
    return {
        "before": round(statistics.fmean(before), 5),
        "after": round(statistics.fmean(after), 5),
        "improved": up,
        "worsened": down,
        "p_value": _sign_test(up, down),
    }


def _sign_test(up: int, down: int) -> float:
    """The two-sided exact sign test of prompts whose reward rose against those whose reward fell."""
    from scipy.stats import binomtest

    return 1.0 if up + down == 0 else float(binomtest(up, up + down, 0.5).pvalue)


def summary(metrics: Mapping[str, Any]) -> str | None:
    if "held_out_reward_after" not in metrics:
        return None
    return (
        f"held-out reward {metrics['held_out_reward_before']:.2f} -> {metrics['held_out_reward_after']:.2f} "
        f"(p={metrics['held_out_p_value']:.2g}), KL {metrics.get('kl_last', 0.0):.3f}"
    )


def _term(term: Mapping[str, Any]) -> str:
    """A reward term in a few words: `regex(^Forge)`, `exact(answer) x2`."""
    what = term.get("field") or term.get("pattern") or term.get("test") or ("schema" if term.get("json_schema") else "")
    weight = term.get("weight", 1.0)
    return f"{term['kind']}({what})" + (f" x{weight:g}" if weight != 1.0 else "")


def dashboard(settings: Mapping[str, Any] | None, metrics: Mapping[str, Any]) -> dict[str, Any]:
    s = settings or {}
    terms = ", ".join(_term(t) for t in s.get("reward", []))
    return {
        "method": NAME,
        "reward": terms,
        "group_size": s.get("group_size"),
        "beta": s.get("beta"),
        "held_out_reward": (metrics.get("held_out_reward_before"), metrics.get("held_out_reward_after")),
        "held_out_p_value": metrics.get("held_out_p_value"),
        "reward_per_step": (metrics.get("reward_mean_first"), metrics.get("reward_mean_last")),
        "kl_last": metrics.get("kl_last"),
        "no_signal_last": metrics.get("no_signal_last"),
        "held_out_judges": metrics.get("held_out_judges"),
    }
