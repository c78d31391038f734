"""A deterministic corpus of long documents with labelled questions, each answered by exactly one passage.

Why generated: the eval must ship (no download) and must have one right passage per question. Each
document is a ~7,400-character service handbook in the same Markdown shape — the same section names in
every document ("Retention", "Paging", ...) with facts that differ by document. The service's name
appears only in the document's opening paragraph; the sections say "the service". That is the situation
Anthropic's contextual-retrieval post describes ("the company's revenue grew 3%" — which company?): a
question names the service, the passage holding its answer does not, so the passage alone cannot tell
which of the 30 "Retention" sections is meant, while a whole-document summary names the service but
buries the passage. Filler sentences keep each section long enough that a document is well over the
1,024-token prompt-cache minimum of the context model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = [
    "Orion", "Zephyr", "Falcon", "Juniper", "Quasar", "Nimbus", "Cobalt", "Sequoia", "Tundra", "Mistral",
    "Aurora", "Basalt", "Cypress", "Dynamo", "Ember", "Fjord", "Granite", "Harbor", "Indigo", "Jasper",
    "Kestrel", "Lumen", "Magnet", "Nebula", "Obsidian", "Pioneer", "Quartz", "Raven", "Sierra", "Topaz",
]  # fmt: skip
KINDS = ["ingestion", "billing", "search", "notification", "export", "identity"]
FILLER = [
    "Changes to this section follow the usual review process.",
    "Questions about it go to the owning team's channel.",
    "The platform group audits the setting every quarter.",
    "Exceptions need a written approval from the service owner.",
    "The dashboard shows the current value next to the history.",
    "Older runbooks may still mention an earlier value.",
    "Staging uses the same setting unless noted otherwise.",
    "The value is checked by an automated test on every deploy.",
    "Incident reviews that touch this area link back to this page.",
    "The history of the setting is kept in the configuration repository.",
    "Teams that depend on the service are told a week before a change.",
    "A rollback restores the previous value within one deploy.",
    "The numbers here were last confirmed during the yearly review.",
    "Monitoring alerts when the live value drifts from this page.",
    "New team members read this section during their first week.",
    "Customer-facing documentation is updated in the same change.",
]


@dataclass(frozen=True)
class Fact:
    """A section's template: the passage sentence and the question asking for it (``{v}`` the value)."""

    section: str
    sentence: str
    question: str


FACTS = [
    Fact(
        "Retention",
        "Raw events are kept for {v} days before they are purged.",
        "How many days does {n} keep raw events?",
    ),
    Fact(
        "Paging",
        "A page must be acknowledged within {v} minutes by the primary.",
        "Within how many minutes must a page for {n} be acknowledged?",
    ),
    Fact(
        "Rate limits",
        "Each client may send at most {v} requests per second.",
        "How many requests per second may a client send to {n}?",
    ),
    Fact(
        "Backups",
        "Snapshots are taken every {v} hours and copied off site.",
        "How often, in hours, are snapshots of {n} taken?",
    ),
    Fact(
        "Deploys",
        "Production deploys need {v} approving reviewers.",
        "How many approving reviewers does a production deploy of {n} need?",
    ),
    Fact(
        "Capacity",
        "The cluster runs {v} worker nodes at peak load.",
        "How many worker nodes does {n} run at peak load?",
    ),
    Fact(
        "Error budget",
        "The monthly error budget is {v} minutes of downtime.",
        "What is the monthly error budget of {n} in minutes of downtime?",
    ),
    Fact(
        "Onboarding",
        "New engineers shadow the on-call rotation for {v} weeks.",
        "For how many weeks do new engineers on {n} shadow the rotation?",
    ),
]


@dataclass(frozen=True)
class EvalDocument:
    document_id: str
    title: str
    text: str


@dataclass(frozen=True)
class EvalQuestion:
    """``answer`` is the passage sentence (with its value): a retrieved text containing it is a hit."""

    question_id: str
    question: str
    document_id: str
    answer: str


def _section(rng: random.Random, fact: Fact, value: int) -> str:
    filler = rng.sample(FILLER, 14)
    at = rng.randint(1, 12)
    sentences = [*filler[:at], fact.sentence.format(v=value), *filler[at:]]
    # Paragraphs of 5 sentences: a section spans several passages, the answer sits in one of them.
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return f"## {fact.section}\n\n" + "\n\n".join(paragraphs) + "\n"


def generate(
    documents: int = 30, questions_per_document: int = 4, seed: int = 15
) -> tuple[list[EvalDocument], list[EvalQuestion]]:
    """``documents`` handbooks (at most 30) and ``questions_per_document`` questions each (at most 8)."""
    rng = random.Random(seed)
    docs: list[EvalDocument] = []
    questions: list[EvalQuestion] = []
    for i, name in enumerate(NAMES[:documents]):
        kind = KINDS[i % len(KINDS)]
        document_id = f"handbooks__{name.lower()}-service"
        title = f"Service handbook {i + 1}"
        intro = (
            f"This handbook covers the {name} {kind} service and how its team runs it. "
            f"The {name} service is owned by the {kind} platform team. "
            "Every section below describes the service as it runs in production."
        )
        values = [rng.randint(2, 97) for _ in FACTS]
        body = "\n".join(_section(rng, fact, value) for fact, value in zip(FACTS, values, strict=True))
        docs.append(EvalDocument(document_id, title, f"# {title}\n\n{intro}\n\n{body}"))
        for j in rng.sample(range(len(FACTS)), questions_per_document):
            fact = FACTS[j]
            questions.append(
                EvalQuestion(
                    f"q{i:02d}-{j}",
                    fact.question.format(n=f"the {name} service"),
                    document_id,
                    fact.sentence.format(v=values[j]),
                )
            )
    return docs, questions
