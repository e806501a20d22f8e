"""A synthetic, ultrachat-shaped chat dataset for demos and tests (deterministic; no download).

Rows have the columns of HuggingFaceH4/ultrachat_200k (prompt, prompt_id, messages). Answers follow
simple per-topic patterns, so a tiny model can visibly learn them in a minute on a CPU.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

TOPICS = {
    "the ocean": "The ocean is vast and deep. It covers most of the Earth and is home to whales and fish.",
    "mountains": "Mountains are tall and rocky. Their peaks are cold and often covered in snow.",
    "the sun": "The sun is a bright star. It gives the Earth light and warmth every day.",
    "forests": "Forests are full of trees. They give shelter to birds, deer and many insects.",
    "rivers": "Rivers carry fresh water to the sea. Many towns were built beside them.",
    "the moon": "The moon circles the Earth. It shines at night with light from the sun.",
    "deserts": "Deserts are dry and hot by day. Cactus plants store water to live there.",
    "rain": "Rain falls from clouds. It fills rivers and helps plants grow.",
}
ASKS = ["Tell me about {t}.", "What do you know about {t}?", "Describe {t} briefly.", "Can you explain {t}?"]
FOLLOW_UPS = [("Why does it matter?", "It matters because life on Earth depends on it."), ("Give me one fact.", "Here is one fact: {fact}")]


def make_rows(n: int, seed: int = 0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    topics = list(TOPICS)
    for _ in range(n):
        topic = rng.choice(topics)
        prompt = rng.choice(ASKS).format(t=topic)
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": TOPICS[topic]}]
        if rng.random() < 0.3:
            ask, answer = rng.choice(FOLLOW_UPS)
            messages += [
                {"role": "user", "content": ask},
                {"role": "assistant", "content": answer.format(fact=TOPICS[topic].split(". ")[0] + ".")},
            ]
        prompt_id = hashlib.sha256(f"{prompt}{len(rows)}".encode()).hexdigest()
        rows.append({"prompt": prompt, "prompt_id": prompt_id, "messages": messages})
    return rows


def write_dataset(out_dir: str | Path, rows: int = 400, test_rows: int | None = None, seed: int = 0) -> dict[str, Path]:
    """Write ``train_sft.jsonl`` and ``test_sft.jsonl`` (ultrachat's split names) under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    test_n = test_rows if test_rows is not None else max(8, rows // 10)
    paths = {}
    for split, n, s in (("train_sft", rows, seed), ("test_sft", test_n, seed + 1)):
        path = out / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in make_rows(n, s)), encoding="utf-8")
        paths[split] = path
    return paths
