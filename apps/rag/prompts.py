"""PA-RAG's prompt, which is ALCE's ASQA prompt: instruction, question, numbered documents, "Answer:".

Layout (ALCE, as PA-RAG's inference code uses it zero-shot):
`"{instruction}\\n\\nQuestion: {question}\\n\\n{docs}\\nAnswer:"`, each document on its own line as
`Document [i](Title: {title}): {text}`, numbered from 1, under PA-RAG's system message.
"""

from __future__ import annotations

from apps.rag.data import Doc

SYSTEM = "You are a helpful assistant that answers the following questions with proper citations."
INSTRUCTION = (
    "Instruction: Write an accurate, engaging, and concise answer for the given question using only the provided "
    "search results (some of which might be irrelevant) and cite them properly. Use an unbiased and journalistic "
    "tone. Always cite for any factual claim. When citing several search results, use [1][2][3]. Cite at least one "
    "document and at most three documents in each sentence. If multiple documents support the sentence, only cite "
    "a minimum sufficient subset of the documents."
)


def format_docs(docs: list[Doc]) -> str:
    return "".join(f"Document [{i}](Title: {d.title}): {d.text}\n" for i, d in enumerate(docs, 1))


def user_message(question: str, docs: list[Doc]) -> str:
    return f"{INSTRUCTION}\n\nQuestion: {question}\n\n{format_docs(docs)}\nAnswer:"


def rag_prompt(question: str, docs: list[Doc]) -> list[dict[str, str]]:
    """The chat messages for a question and its documents (system message + ALCE's user turn)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_message(question, docs)}]
