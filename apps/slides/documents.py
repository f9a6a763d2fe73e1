"""Research papers as documents: an embedded generator of invented papers, and Markdown / PDF loaders.

A `Document` is a title, authors and an ordered tuple of `Section`s; each section keeps its heading as
written, its category (apps/slides/categories.py, via `categorize`), its sentences (most important first
for generated papers, reading order for loaded ones) and an optional table.

`generate_documents(n, seed)` invents short papers (150-320 words) with checkable facts: a CamelCase
method name, invented authors and dataset names, field-specific metrics and baselines, and numbers that
agree between the sentences and the experiments table. Document i depends only on (seed, i).

`load_document(path)` reads .md / .markdown / .txt (Markdown) or .pdf (text extraction through pypdf).
Every failure is a `DocumentError` whose message is one line starting with the path (and a line number
where one applies), e.g. ``paper.md:7: table row has 3 cells, header has 4``.
"""

from __future__ import annotations

import io
import logging
import random
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from apps.slides.categories import categorize

MARKDOWN_SUFFIXES = (".md", ".markdown", ".txt")
PDF_SUFFIXES = (".pdf",)
MIN_WORDS, MAX_WORDS = 150, 320


# ----------------------------------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class Section:
    """One section: heading as written, its category key (None if no rule matches), sentences, table."""

    heading: str
    category: str | None
    sentences: tuple[str, ...]
    table: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Document:
    """A paper: id, title, authors and sections; `source` is the file path or "embedded:<seed>:<index>"."""

    id: str
    title: str
    authors: tuple[str, ...]
    sections: tuple[Section, ...]
    source: str = ""

    def full_text(self) -> str:
        """Title, authors, every heading, sentence and table row (cells tab-separated), one per line."""
        lines = [self.title]
        if self.authors:
            lines.append(", ".join(self.authors))
        for sec in self.sections:
            lines.append(sec.heading)
            lines.extend(sec.sentences)
            lines.extend("\t".join(row) for row in sec.table)
        return "\n".join(lines)

    def words(self) -> int:
        """Whitespace-separated word count of `full_text`."""
        return len(self.full_text().split())

    def section(self, category: str) -> Section | None:
        """The first section of that category, or None."""
        return next((s for s in self.sections if s.category == category), None)

    def categories(self) -> list[str]:
        """The category keys of the sections in order, sections without a category skipped."""
        return [s.category for s in self.sections if s.category is not None]


class DocumentError(ValueError):
    """A document file that cannot be read; the message is one line starting with the path."""


def _fail(path: Path | str, message: str, line: int | None = None) -> DocumentError:
    where = f"{path}:{line}" if line is not None else f"{path}"
    return DocumentError(f"{where}: {' '.join(str(message).split())}")


def section_category(heading: str) -> str | None:
    """categorize(heading), except that "title" (a Title / Authors heading) is not a section category."""
    key = categorize(heading)
    return None if key == "title" else key


# ----------------------------------------------------------------------------------------------------
# Sentences

# Words whose final period does not end a sentence (compared lower-case, without that period).
_ABBREVIATIONS = frozenset(
    "e.g i.e al fig figs eq eqs sec secs tab tabs cf vs approx no nos dr mr mrs ms prof st resp ref refs "
    "ch vol pp p.p ca incl".split()
)
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, then
# something that can start a sentence (capital letter or digit, possibly after an opening quote/bracket).
_BOUNDARY = re.compile(r"([.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences without breaking "e.g.", "Fig. 2", "71.3", "et al." or initials."""
    text = " ".join(text.split())
    out, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.group(1) == "." and _is_abbreviation(text[start : m.start()]):
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _is_abbreviation(before: str) -> bool:
    """Whether the last word of `before` (the text up to a period) is an abbreviation or an initial."""
    words = before.split()
    if not words:
        return False
    word = words[-1].lstrip("(\"'[")
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())


def _finish_sentence(sentence: str) -> str:
    """The sentence with terminal punctuation: a bullet or fragment gets a final period."""
    sentence = sentence.strip()
    if re.search(r"[.!?][\"')\]]*$", sentence):
        return sentence
    return sentence.rstrip(":;,- ") + "."


def _sentences(paragraphs: list[str]) -> tuple[str, ...]:
    out = []
    for paragraph in paragraphs:
        out.extend(_finish_sentence(s) for s in split_sentences(paragraph))
    return tuple(s for s in out if re.search(r"\w", s))


# ----------------------------------------------------------------------------------------------------
# Embedded generator: vocabulary


@dataclass(frozen=True)
class _Metric:
    name: str
    lo: float
    hi: float
    decimals: int
    higher: bool  # True when higher is better


@dataclass(frozen=True)
class _Field:
    name: str
    task: str  # lower case, used in sentences
    task_title: str  # for the paper title
    inputs: str
    outputs: str
    unit: str
    units: str
    metrics: tuple[_Metric, ...]
    baselines: tuple[str, ...]
    dataset_patterns: tuple[str, ...]  # "{p}" is a name prefix, "{k}" a small number
    sources: tuple[str, ...]
    challenges: tuple[str, ...]
    framings: tuple[str, ...]
    directions: tuple[str, ...]


_FIELDS: tuple[_Field, ...] = (
    _Field(
        "question answering", "open-domain question answering", "Open-Domain Question Answering",
        "a question and a large passage collection", "a short answer span", "question", "questions",
        (_Metric("exact match", 30, 72, 1, True), _Metric("F1", 40, 85, 1, True)),
        ("BM25", "DPR", "ColBERT", "FiD", "Contriever", "RAG-Token"),
        ("{p}QA", "{p}Questions", "{p}-QA"),
        ("encyclopedia pages", "community forums", "school exam archives", "news articles"),
        ("retrievers miss passages that share few words with the question",
         "readers are distracted by long passages that mention the answer only once",
         "answers often need evidence spread over two or more passages"),
        ("passage ranking followed by answer extraction", "generation conditioned on retrieved passages"),
        ("multilingual questions", "multi-hop questions", "conversational follow-up questions"),
    ),
    _Field(
        "graph learning", "node classification on large graphs", "Node Classification on Large Graphs",
        "a graph with node features and few labels", "a label for every node", "graph", "graphs",
        (_Metric("accuracy", 55, 92, 1, True), _Metric("macro-F1", 45, 88, 1, True)),
        ("GCN", "GraphSAGE", "GAT", "GIN", "APPNP", "GPRGNN"),
        ("{p}Graph-{k}k", "{p}Nets", "{p}Citations"),
        ("citation databases", "co-purchase logs", "social networks", "road maps"),
        ("message passing oversmooths features after a few layers",
         "neighbourhoods grow exponentially and exhaust GPU memory",
         "labels are scarce and concentrated in a few dense regions"),
        ("semi-supervised learning over a fixed graph", "inductive learning on unseen subgraphs"),
        ("dynamic graphs with changing edges", "heterogeneous graphs with typed edges", "link prediction"),
    ),
    _Field(
        "speech recognition", "low-resource speech recognition", "Low-Resource Speech Recognition",
        "an audio recording", "its transcript", "recording", "recordings",
        (_Metric("WER", 5, 30, 1, False), _Metric("CER", 2, 12, 1, False)),
        ("Whisper-Small", "Conformer", "QuartzNet", "HuBERT-Base", "ContextNet", "Jasper"),
        ("{p}Speech", "{p}Voice", "{p}Calls"),
        ("radio broadcasts", "call-centre recordings", "read audiobooks", "parliament sessions"),
        ("accents and background noise differ sharply between training and test audio",
         "many languages have fewer than ten hours of transcribed speech",
         "long recordings overflow the attention window of the encoder"),
        ("sequence transduction with a CTC loss", "encoder-decoder decoding with beam search"),
        ("code-switched speech", "streaming recognition on phones", "spoken language understanding"),
    ),
    _Field(
        "image segmentation", "semantic image segmentation", "Semantic Image Segmentation",
        "an RGB image", "a class label for every pixel", "image", "images",
        (_Metric("mIoU", 35, 80, 1, True), _Metric("pixel accuracy", 70, 96, 1, True)),
        ("U-Net", "DeepLabv3", "SegFormer", "Mask2Former", "PSPNet", "HRNet"),
        ("{p}Seg", "{p}Scenes", "{p}Streets"),
        ("dashcam videos", "drone surveys", "satellite tiles", "microscope slides"),
        ("thin structures such as poles and cables vanish at coarse resolutions",
         "dense labels are expensive and many classes are rare",
         "models trained in one city fail in another with different lighting"),
        ("dense per-pixel classification", "mask classification with learned queries"),
        ("video segmentation with temporal consistency", "open-vocabulary classes", "3D point clouds"),
    ),
    _Field(
        "code generation", "code generation from natural language", "Code Generation from Natural Language",
        "a function description with a signature", "a working function body", "problem", "problems",
        (_Metric("pass@1", 15, 70, 1, True), _Metric("pass@10", 30, 88, 1, True)),
        ("CodeT5", "StarCoder-1B", "InCoder", "CodeGen-2B", "SantaCoder", "PolyCoder"),
        ("{p}Eval", "{p}Code", "{p}Bench"),
        ("programming contests", "open-source repositories", "coding interview sites", "textbook exercises"),
        ("generated programs often compile but fail hidden unit tests",
         "models copy patterns from training code without checking edge cases",
         "long specifications push the important details out of the context"),
        ("conditional generation checked by unit tests", "sampling followed by test-based reranking"),
        ("repository-level code completion", "programs in low-resource languages", "automatic bug repair"),
    ),
    _Field(
        "recommendation", "sequential recommendation", "Sequential Recommendation",
        "a user's history of interactions", "a ranked list of next items", "user", "users",
        (_Metric("NDCG@10", 0.08, 0.45, 3, True), _Metric("Recall@20", 0.15, 0.65, 3, True)),
        ("SASRec", "BERT4Rec", "GRU4Rec", "LightGCN", "Caser", "NARM"),
        ("{p}Shop-{k}k", "{p}Rec", "{p}Music"),
        ("online shop logs", "music streaming sessions", "news click logs", "movie rating sites"),
        ("most users have short histories that reveal little about their taste",
         "popular items dominate training and bury niche items",
         "user interests drift within a single session"),
        ("next-item ranking over the full catalogue", "ranking over sampled candidate sets"),
        ("cold-start items with text only", "multi-domain recommendation", "explanations for users"),
    ),
    _Field(
        "machine translation", "low-resource machine translation", "Low-Resource Machine Translation",
        "a sentence in the source language", "its translation", "sentence pair", "sentence pairs",
        (_Metric("BLEU", 12, 45, 1, True), _Metric("chrF", 35, 70, 1, True)),
        ("Transformer-Big", "NLLB-600M", "M2M-100", "DeltaLM", "Marian", "ConvS2S"),
        ("{p}Parallel", "{p}MT", "{p}Bitext"),
        ("government records", "subtitle files", "religious texts", "news wires"),
        ("parallel data is tiny for most language pairs",
         "rare words and names are often dropped or copied wrongly",
         "domain shift between training and test text lowers quality"),
        ("sequence-to-sequence generation", "denoising pretraining followed by fine-tuning"),
        ("document-level translation", "speech translation", "dialects without a written standard"),
    ),
    _Field(
        "time-series forecasting", "long-horizon time-series forecasting",
        "Long-Horizon Time-Series Forecasting",
        "a window of past observations", "the next few hundred values", "series", "series",
        (_Metric("MAE", 0.2, 0.6, 3, False), _Metric("MSE", 0.15, 0.8, 3, False)),
        ("Informer", "Autoformer", "PatchTST", "DLinear", "N-BEATS", "FEDformer"),
        ("{p}Load", "{p}Traffic", "{p}Weather"),
        ("electricity meters", "road sensors", "weather stations", "hospital monitors"),
        ("errors compound quickly over long horizons",
         "seasonal patterns change after holidays and outages",
         "sensors drop out and leave long gaps in the input"),
        ("multi-step regression over a fixed horizon", "probabilistic forecasting with quantiles"),
        ("irregularly sampled series", "forecasts with calibrated uncertainty", "exogenous covariates"),
    ),
    _Field(
        "protein design", "protein sequence design", "Protein Sequence Design",
        "a target backbone structure", "an amino acid sequence that folds into it", "structure",
        "structures",
        (_Metric("sequence recovery", 30, 62, 1, True), _Metric("perplexity", 3.5, 9.5, 2, False)),
        ("ProteinMPNN", "ESM-IF", "GVP-GNN", "StructGNN", "PiFold", "AlphaDesign"),
        ("{p}Fold", "{p}PDB", "{p}Domains"),
        ("crystal structures", "predicted structure databases", "enzyme families", "antibody archives"),
        ("many sequences fit a backbone but few fold into it in the lab",
         "designs often lose stability when their surface is mutated",
         "structure data is dominated by a few well studied families"),
        ("inverse folding conditioned on backbone coordinates", "autoregressive sequence generation"),
        ("binder design for given targets", "designs tested by wet lab assays", "multi-chain complexes"),
    ),
    _Field(
        "robot control", "robot manipulation from demonstrations", "Robot Manipulation from Demonstrations",
        "camera images and joint states", "the next motor commands", "demonstration", "demonstrations",
        (_Metric("success rate", 30, 92, 1, True), _Metric("average return", 120, 900, 0, True)),
        ("BC-RNN", "Diffusion Policy", "IBC", "BeT", "ACT", "VINN"),
        ("{p}Manip", "{p}Tasks", "{p}Kitchen"),
        ("teleoperated robot arms", "simulated kitchens", "warehouse pick stations", "human videos"),
        ("policies fail when objects start in positions never demonstrated",
         "small errors accumulate and push the robot off the demonstrated path",
         "collecting demonstrations costs hours of expert time"),
        ("behaviour cloning from demonstrations", "offline reinforcement learning with rewards"),
        ("deformable objects such as cloth", "bimanual tasks", "transfer from simulation to real arms"),
    ),
)

# Name part -> the adjective it stands for in text and title.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("Sparse", "sparse"), ("Graph", "graph"), ("Temporal", "temporal"), ("Dense", "dense"),
    ("Latent", "latent"), ("Spectral", "spectral"), ("Causal", "causal"), ("Modular", "modular"),
    ("Dual", "dual-view"), ("Cross", "cross-layer"), ("Hyper", "hypernetwork"), ("Meta", "meta-learned"),
    ("Token", "token-level"), ("Memory", "memory-based"), ("Residual", "residual"),
    ("Contrast", "contrastive"), ("Anchor", "anchor-based"), ("Prism", "multi-view"),
    ("Echo", "self-distilled"), ("Drift", "shift-aware"), ("Tidal", "periodic"), ("Quill", "sketch-based"),
    ("Mosaic", "patch-level"), ("Vector", "vector"), ("Kernel", "kernel"), ("Fractal", "recursive"),
    ("Pivot", "pivot-based"), ("Lattice", "lattice"), ("Cascade", "cascaded"), ("Orbit", "cyclic"),
    ("Relay", "relay"), ("Beacon", "landmark"), ("Ember", "low-rank"), ("Cobalt", "quantised"),
)
# Name part -> (title noun, verb, object) for "<Method> <verb> <adjective> <object>".
_SUFFIXES: tuple[tuple[str, str, str, str], ...] = (
    ("Fuse", "Fusion", "fuses", "representations from two encoders"),
    ("Prune", "Pruning", "prunes", "connections that carry little signal"),
    ("Mix", "Mixing", "mixes", "features across layers"),
    ("Net", "Networks", "encodes", "inputs with a shared backbone"),
    ("Former", "Transformers", "attends over", "tokens with a shared backbone"),
    ("Align", "Alignment", "aligns", "representations across views"),
    ("Shift", "Shifting", "shifts", "attention toward informative inputs"),
    ("Gate", "Gating", "gates", "features before each prediction"),
    ("Route", "Routing", "routes", "tokens to specialised experts"),
    ("Weave", "Interleaving", "interleaves", "local and global features"),
    ("Bridge", "Bridging", "bridges", "coarse and fine representations"),
    ("Lens", "Probing", "probes", "intermediate layers for useful features"),
    ("Stitch", "Stitching", "stitches", "partial predictions into one output"),
    ("Scope", "Scoping", "restricts", "context to the relevant regions"),
    ("Flow", "Flows", "propagates", "signals through a learned flow graph"),
    ("Distill", "Distillation", "distils", "teacher predictions into a small student"),
    ("Cache", "Caching", "caches", "intermediate states for reuse"),
    ("Rank", "Ranking", "reranks", "candidates with a learned scorer"),
)
_TITLE_ADJECTIVES = (
    "Learned", "Adaptive", "Contrastive", "Hierarchical", "Efficient", "Robust", "Lightweight",
    "Scalable", "Self-Supervised", "Uncertainty-Aware", "Simple", "Calibrated",
)
_COMPONENTS = (
    "gating network", "scoring head", "fusion layer", "graph encoder", "memory module", "adapter stack",
    "attention block", "refinement module",
)
_LOSSES = ("a contrastive loss", "cross-entropy", "a margin ranking loss", "a distillation loss",
           "label-smoothed cross-entropy")
_LEARNING_RATES = ("0.0001", "0.0002", "0.0003", "0.0005", "0.001")
_DEVICES = ("phones", "embedded boards", "edge devices", "laptops without a GPU")
_LICENSES = ("MIT", "Apache 2.0", "CC BY 4.0")
_FIRST_NAMES = (
    "Mira", "Jun", "Tomas", "Aisha", "Lena", "Ravi", "Sofia", "Kenji", "Amara", "Diego", "Ines", "Oskar",
    "Priya", "Yusuf", "Hana", "Mateo", "Leila", "Nikolai", "Chloe", "Kwame", "Elif", "Arjun", "Freya",
    "Tariq", "Mei", "Lucas", "Zainab", "Emil", "Noor", "Pablo", "Ingrid", "Sipho", "Yara", "Dmitri",
    "Ana", "Kofi", "Sana", "Henrik", "Lina", "Omar",
)
_LAST_NAMES = (
    "Okafor", "Park", "Lindqvist", "Haddad", "Moreau", "Iyer", "Rossi", "Tanaka", "Mensah", "Alvarez",
    "Novak", "Berg", "Chaudhry", "Demir", "Sato", "Fischer", "Nakamura", "Kowalski", "Osei", "Petrov",
    "Silva", "Yilmaz", "Brennan", "Castillo", "Dubois", "Ekwueme", "Farouk", "Gallo", "Horvat", "Jansen",
    "Kaur", "Larsen", "Mwangi", "Nguyen", "Ortiz", "Quinn", "Rahman", "Schultz", "Varga", "Wong",
)
_DATASET_PREFIXES = (
    "Reef", "Lantern", "Harbor", "Cedar", "Quarry", "Meadow", "Tern", "Basalt", "Juniper", "Falcon",
    "Marrow", "Glacier", "Pebble", "Saffron", "Thistle", "Willow", "Coral", "Dune", "Heron", "Ivy",
    "Kestrel", "Lupine", "Mistral", "Nettle", "Opal", "Puffin", "Rowan", "Sable", "Tundra", "Umber",
)

# Heading synonyms per category; every one satisfies categorize(heading) == category (tested).
HEADINGS: dict[str, tuple[str, ...]] = {
    "motivation": ("Introduction", "Motivation", "Challenges", "Introduction and Motivation",
                   "Motivation and Challenges"),
    "background": ("Background", "Preliminaries", "Definitions", "Background and Definitions"),
    "problem": ("Problem Formulation", "Problem Statement", "Task Definition", "Problem Setting"),
    "related": ("Related Work", "Prior Work", "Previous Work", "Literature Review"),
    "method": ("Method", "Approach", "Our Method", "Method Overview", "Model", "Proposed Approach",
               "Architecture", "Methodology"),
    "dataset": ("Dataset", "Datasets", "Data Collection", "Dataset Construction", "Data Construction"),
    "experiments": ("Experiments", "Results", "Evaluation", "Experimental Setup and Results",
                    "Main Results", "Experimental Results"),
    "future": ("Limitations and Future Work", "Future Work", "Limitations", "Future Directions",
               "Outlook", "Next Steps"),
    "conclusion": ("Conclusion", "Summary", "Conclusions", "Takeaways"),
}
OPTIONAL_CATEGORIES = ("background", "problem", "related", "dataset", "future")


# ----------------------------------------------------------------------------------------------------
# Embedded generator: facts


@dataclass
class _Score:
    """A metric value held as an integer count of its last decimal place, so differences are exact."""

    units: int
    decimals: int

    def __str__(self) -> str:
        return f"{self.units / 10 ** self.decimals:.{self.decimals}f}"


@dataclass
class _Paper:
    """Every fact of one invented paper; the section writers only phrase these."""

    rng: random.Random
    fld: _Field
    method: str
    adjective: str  # the prefix's adjective, lower case
    noun: str  # the suffix's title noun ("Fusion")
    verb: str
    obj: str
    title: str
    authors: tuple[str, ...]
    dataset: str
    dataset2: str
    metric: _Metric
    metric2: _Metric | None
    rows: list[tuple[str, list[_Score]]] = field(default_factory=list)  # baselines, then the method
    best: str = ""  # best baseline on the main metric
    best2: str = ""  # best baseline on the second metric
    component: str = ""
    overhead: int = 0

    def score(self, name: str, k: int = 0) -> _Score:
        return next(scores[k] for row, scores in self.rows if row == name)

    def gain(self, k: int = 0) -> _Score:
        """|method - best baseline| on metric k."""
        other = self.best if k == 0 else self.best2
        a, b = self.score(self.method, k), self.score(other, k)
        return _Score(abs(a.units - b.units), a.decimals)


def _title_case(phrase: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in phrase.split("-"))


def _pick_scores(rng: random.Random, metric: _Metric, count: int, method_wins: bool) -> list[_Score]:
    """`count` baseline scores and then the method's, all distinct; the method best iff method_wins.

    Scores sit close together as in real result tables: the best one in the upper part of the metric's
    range and each next one a small, random step (at least 3 last-place units) worse.
    """
    scale = 10 ** metric.decimals
    lo, hi = round(metric.lo * scale), round(metric.hi * scale)
    span = hi - lo
    best = rng.randint(lo + span // 3, hi)
    ordered = [best]  # best first
    for _ in range(count):
        step = rng.randint(3, max(4, span // 10))
        ordered.append(ordered[-1] - step if metric.higher else ordered[-1] + step)
    if method_wins:
        method, baselines = ordered[0], ordered[1:]
    else:
        method, baselines = ordered[1], [ordered[0], *ordered[2:]]
    rng.shuffle(baselines)
    return [_Score(v, metric.decimals) for v in (*baselines, method)]


def _make_paper(rng: random.Random) -> _Paper:
    """Draw every fact of a paper."""
    fld = rng.choice(_FIELDS)
    prefix, adjective = rng.choice(_PREFIXES)
    suffix, noun, verb, obj = rng.choice(_SUFFIXES)
    method = prefix + suffix
    title = f"{method}: {rng.choice(_TITLE_ADJECTIVES)} {_title_case(adjective)} {noun} for {fld.task_title}"
    firsts = rng.sample(_FIRST_NAMES, 4)
    lasts = rng.sample(_LAST_NAMES, 4)
    authors = tuple(f"{f} {l}" for f, l in zip(firsts, lasts))[: rng.randint(2, 4)]
    prefixes = rng.sample(_DATASET_PREFIXES, 2)
    patterns = rng.sample(fld.dataset_patterns, 2)
    dataset, dataset2 = (p.format(p=x, k=rng.randint(2, 9)) for p, x in zip(patterns, prefixes))
    metric, metric2 = fld.metrics if rng.random() < 0.7 else (fld.metrics[0], None)
    if rng.random() < 0.3:
        metric, metric2 = fld.metrics[1], (fld.metrics[0] if metric2 else None)
    paper = _Paper(
        rng, fld, method, adjective, noun, verb, obj, title, authors, dataset, dataset2, metric, metric2
    )
    names = [*rng.sample(fld.baselines, rng.randint(1, 3)), method]
    columns = [_pick_scores(rng, metric, len(names) - 1, True)]
    if metric2:
        columns.append(_pick_scores(rng, metric2, len(names) - 1, rng.random() < 0.7))
    paper.rows = [(name, [col[i] for col in columns]) for i, name in enumerate(names)]
    paper.best = _best_baseline(paper, 0)
    paper.best2 = _best_baseline(paper, 1) if metric2 else ""
    paper.component = rng.choice(_COMPONENTS)
    paper.overhead = rng.randint(3, 25)
    return paper


def _best_baseline(paper: _Paper, k: int) -> str:
    metric = paper.metric if k == 0 else paper.metric2
    baselines = [(scores[k].units, name) for name, scores in paper.rows[:-1]]
    return (max if metric.higher else min)(baselines)[1]


# ----------------------------------------------------------------------------------------------------
# Embedded generator: sentences, most important first (each writer returns at least 4)


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _reach(paper: _Paper, value: _Score, metric: _Metric) -> str:
    """"reaches 71.3 F1" or "lowers WER to 7.9"."""
    if metric.higher:
        return f"reaches {value} {metric.name}"
    return f"lowers {metric.name} to {value}"


def _improve(paper: _Paper) -> str:
    """"improves F1 by 2.4 points" or "reduces MAE by 0.031"."""
    word = "improves" if paper.metric.higher else "reduces"
    return f"{word} {paper.metric.name} by {_points(paper)}"


def _points(paper: _Paper) -> str:
    gain = paper.gain()
    return f"{gain} points" if gain.decimals == 1 else str(gain)


def _motivation(p: _Paper) -> list[str]:
    r, f = p.rng, p.fld
    challenge = r.choice(f.challenges)
    return [
        f"{_title_case(f.task[0]) + f.task[1:]} remains hard because {challenge}.",
        f"We introduce {p.method}, which {p.verb} {p.adjective} {p.obj} to address this gap.",
        f"On {p.dataset}, {p.method} {_improve(p)} over the strongest baseline, {p.best}.",
        f"The approach adds only {p.overhead}% training cost and needs no extra labels.",
    ]


def _background(p: _Paper) -> list[str]:
    r, f = p.rng, p.fld
    a, b = r.sample(f.baselines, 2)
    return [
        f"In {f.name}, a system maps {f.inputs} to {f.outputs}.",
        f"Strong systems such as {a} and {b} are trained end to end on thousands of {f.units}.",
        f"We call a {f.unit} hard when the best of these systems gets it wrong.",
        f"Roughly {r.randint(12, 45)}% of test {f.units} in common benchmarks are hard in this sense.",
    ]


def _problem(p: _Paper) -> list[str]:
    r, f = p.rng, p.fld
    return [
        f"Given {f.inputs}, a system must predict {f.outputs}, scored by {p.metric.name}.",
        f"We treat the task as {r.choice(f.framings)} throughout this paper.",
        f"We assume a latency budget of {r.choice((20, 50, 80, 100, 150, 200))} milliseconds "
        f"per {f.unit} at inference time.",
        f"No test labels are seen during training or hyperparameter tuning.",
    ]


def _related(p: _Paper) -> list[str]:
    r, f = p.rng, p.fld
    a, b = r.sample(f.baselines, 2)
    author = r.choice(_LAST_NAMES)
    limit = r.choice(("ignore this signal at training time", "need costly extra supervision",
                      "scale poorly beyond a few thousand inputs"))
    return [
        f"{a} and {b} are the closest prior systems, but both {limit}.",
        f"Unlike them, {p.method} {p.verb} {p.adjective} {p.obj} during training.",
        f"Earlier work by {author} et al. studied {f.task} with hand-tuned pipelines.",
        f"Pipelines built on strong encoders, e.g. {r.choice(f.baselines)}, remain common in practice.",
    ]


def _method(p: _Paper) -> list[str]:
    r, f = p.rng, p.fld
    layers = r.randint(2, 6)
    return [
        f"{p.method} {p.verb} {p.adjective} {p.obj}, using {_article(p.component)} of {layers} layers.",
        f"A backbone with {r.choice((8, 22, 35, 60, 110, 125, 220, 340))} million parameters "
        f"encodes each {f.unit} before the {p.component}.",
        f"Training uses {r.choice(_LOSSES)} for {r.randint(3, 40)} epochs "
        f"with a learning rate of {r.choice(_LEARNING_RATES)}.",
        f"At inference, {p.method} processes one {f.unit} in {r.randint(4, 180)} milliseconds on one GPU.",
    ]


def _dataset(p: _Paper) -> list[str]:
    r, f = p.rng, p.fld
    total = r.randint(20, 900) * 100
    dev = max(100, round(total * r.uniform(0.05, 0.12) / 100) * 100)
    test = max(100, round(total * r.uniform(0.08, 0.15) / 100) * 100)
    train = total - dev - test
    return [
        f"We build {p.dataset}, a collection of {total:,} {f.units} gathered from {r.choice(f.sources)}.",
        f"It is split into {train:,} training, {dev:,} validation and {test:,} test {f.units}.",
        f"Each {f.unit} was checked by {r.randint(2, 5)} annotators, "
        f"with an agreement of {r.randint(62, 93) / 100:.2f} kappa.",
        f"We also evaluate on {p.dataset2}, a public benchmark of {r.randint(5, 400) * 100:,} {f.units}.",
    ]


def _experiments(p: _Paper) -> list[str]:
    r, m = p.rng, p.metric
    ours, best = p.score(p.method), p.score(p.best)
    out = [f"On {p.dataset}, {p.method} {_reach(p, ours, m)}, compared with {best} for {p.best}."]
    if p.metric2:
        m2, ours2, other2 = p.metric2, p.score(p.method, 1), p.score(p.best2, 1)
        better2 = (ours2.units > other2.units) == m2.higher
        if better2:
            out.append(f"On {m2.name}, {p.method} scores {ours2}, ahead of {p.best2} with {other2}.")
        else:
            out.append(f"{p.method} trails {p.best2} on {m2.name}, scoring {ours2} against {other2}.")
    gap = abs(ours.units - best.units)
    ablated = _Score(ours.units + (-1 if m.higher else 1) * r.randint(1, max(1, gap - 1)), ours.decimals)
    direction = "lowers" if m.higher else "raises"
    out.append(f"Removing the {p.component} {direction} {m.name} to {ablated} on the same data.")
    out.append(f"All numbers are averages over {r.choice((3, 5))} runs with different random seeds.")
    if not p.metric2:
        out.append(f"Gains are largest on the hardest {p.fld.units} of the test split.")
    return out


def _experiments_table(p: _Paper) -> tuple[tuple[str, ...], ...]:
    metrics = [p.metric] + ([p.metric2] if p.metric2 else [])
    header = ("Method", *(m.name for m in metrics))
    return (header, *((name, *(str(s) for s in scores)) for name, scores in p.rows))


def _future(p: _Paper) -> list[str]:
    r, f = p.rng, p.fld
    a, b = r.sample(f.directions, 2)
    return [
        f"{p.method} has not yet been tested on {a}, which we plan to study next.",
        f"Its {p.component} adds {r.randint(2, 40)} milliseconds of latency, which limits use on "
        f"{r.choice(_DEVICES)}.",
        f"Extending {p.method} to {b} is a natural next step.",
        f"We will release {p.dataset} and our code under the {r.choice(_LICENSES)} license.",
    ]


def _conclusion(p: _Paper) -> list[str]:
    f = p.fld
    return [
        f"{p.method} {p.verb} {p.adjective} {p.obj} and {_reach(p, p.score(p.method), p.metric)} "
        f"on {p.dataset}.",
        f"It beats {p.best} by {_points(p)} while adding only {p.overhead}% training cost.",
        f"The results make a case for {p.adjective} {p.noun.lower()} in {f.task}.",
        f"Code and data will be released to support follow-up work.",
    ]


_WRITERS = {
    "motivation": _motivation, "background": _background, "problem": _problem, "related": _related,
    "method": _method, "dataset": _dataset, "experiments": _experiments, "future": _future,
    "conclusion": _conclusion,
}


def _section_order(rng: random.Random) -> list[str]:
    """The categories present, in paper order; `related` sits early or late."""
    present = {c for c in OPTIONAL_CATEGORIES if rng.random() < 0.5}
    related_early = rng.random() < 0.5
    order = ["motivation", "background", "problem"]
    if related_early:
        order.append("related")
    order += ["method", "dataset", "experiments"]
    if not related_early:
        order.append("related")
    order += ["future", "conclusion"]
    return [c for c in order if c in present or c not in OPTIONAL_CATEGORIES]


def _generate_one(seed: int, index: int, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> Document:
    rng = random.Random(f"{seed}:{index}")
    paper = _make_paper(rng)
    order = _section_order(rng)
    headings = {c: rng.choice(HEADINGS[c]) for c in order}
    candidates = {c: _WRITERS[c](paper) for c in order}
    table = _experiments_table(paper)
    counts = {c: rng.choice((2, 2, 3, 3, 4)) for c in order}
    counts["experiments"] = max(counts["experiments"], 3 if paper.metric2 else 2)

    def build() -> Document:
        sections = tuple(
            Section(headings[c], c, tuple(candidates[c][: counts[c]]), table if c == "experiments" else ())
            for c in order
        )
        return Document(
            f"gen-{seed}-{index}", paper.title, paper.authors, sections, f"embedded:{seed}:{index}"
        )

    doc = build()
    # Trim or grow sentence counts (never below 2, never beyond the candidates) into the word range;
    # a paper that is still too long loses optional sections.
    while doc.words() > max_words:
        trimmable = [c for c in order if counts[c] > (3 if c == "experiments" and paper.metric2 else 2)]
        if trimmable:
            counts[max(trimmable, key=lambda c: (counts[c], rng.random()))] -= 1
        else:
            order.remove(next(c for c in reversed(order) if c in OPTIONAL_CATEGORIES))
        doc = build()
    while doc.words() < min_words + 10:
        growable = [c for c in order if counts[c] < len(candidates[c])]
        if not growable:
            break
        counts[rng.choice(growable)] += 1
        doc = build()
    return doc


def generate_documents(n: int, seed: int, *, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[Document]:
    """n invented research papers of min_words to max_words words (sections lose sentences, never below two,
    then optional sections go); document i depends only on (seed, i, the word range), not on n."""
    return [_generate_one(seed, i, min_words, max_words) for i in range(n)]


# ----------------------------------------------------------------------------------------------------
# Markdown


def to_markdown(doc: Document) -> str:
    """The document as Markdown: `# Title`, `Authors: ...`, then `## Heading`, a paragraph and a table."""
    lines = [f"# {doc.title}"]
    if doc.authors:
        lines.append(f"Authors: {', '.join(doc.authors)}")
    for sec in doc.sections:
        lines += ["", f"## {sec.heading}"]
        if sec.sentences:
            lines.append(" ".join(sec.sentences))
        if sec.table:
            lines.append("")
            lines += _table_lines(sec.table)
    return "\n".join(lines) + "\n"


def _table_lines(table: tuple[tuple[str, ...], ...]) -> list[str]:
    def row(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    header, *rows = table
    return [row(header), row(tuple("---" for _ in header)), *(row(r) for r in rows)]


@dataclass
class _Draft:
    """A section while it is being read."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    table: list[tuple[str, ...]] = field(default_factory=list)
    table_closed: bool = False  # the first table ended; later tables in this section are skipped

    def section(self) -> Section:
        return Section(self.heading, section_category(self.heading), _sentences(self.paragraphs),
                       tuple(self.table))


_MD_HEADING = re.compile(r"^(#{1,6})(?:\s+(.*?))?\s*$")
_MD_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_MD_AUTHORS = re.compile(r"^\s*authors?\s*:\s*(.*)$", re.IGNORECASE)
_TABLE_SEPARATOR = re.compile(r"^:?-+:?$")


def read_markdown(path: str | Path) -> Document:
    """Read a Markdown paper; the id is the file stem.

    The first `# ` heading is the title; an `Authors:` line (comma-, semicolon- or "and"-separated)
    before the first section gives the authors. `##` and `###` headings start sections (a later `#`
    heading too); deeper headings fold into the current section. Paragraphs and list items become
    sentences; the first pipe table of a section becomes its table (separator rows skipped, every row
    as wide as the header). Text before the first section goes into a section headed "Abstract". Fenced
    code is skipped; link text is kept; bold and code markers are dropped.
    """
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise _fail(path, "empty file")
    title, authors, drafts = _parse_markdown(text.splitlines(), path)
    return Document(path.stem, title, authors, tuple(d.section() for d in drafts), str(path))


def _parse_markdown(lines: list[str], path: Path) -> tuple[str, tuple[str, ...], list[_Draft]]:
    """Title, authors and section drafts of a Markdown text."""
    title: str | None = None
    authors: tuple[str, ...] = ()
    drafts = [_Draft("Abstract")]  # the preamble: text before the first section heading
    paragraph: list[str] = []
    in_table = in_fence = False

    def flush() -> None:
        text = _clean_inline(" ".join(paragraph))
        if text:
            drafts[-1].paragraphs.append(text)
        paragraph.clear()

    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if _MD_FENCE.match(line):
            flush()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if in_table and not line.startswith("|"):
            in_table = False
            drafts[-1].table_closed = bool(drafts[-1].table)
        heading = _MD_HEADING.match(line)
        if heading:
            flush()
            level, text = len(heading.group(1)), _clean_inline((heading.group(2) or "").rstrip("#").strip())
            if level >= 4:
                continue  # deeper headings fold into the current section
            if not text:
                raise _fail(path, "empty heading", number)
            if level == 1 and title is None:
                title = text
            else:
                drafts.append(_Draft(text))
            continue
        if not line:
            flush()
            continue
        authors_line = _MD_AUTHORS.match(line)
        if authors_line and len(drafts) == 1 and not authors:
            flush()
            authors = _split_authors(authors_line.group(1))
            continue
        if line.startswith("|"):
            flush()
            _add_table_row(drafts[-1], line, path, number)
            in_table = True
            continue
        item = _MD_LIST.match(line)
        if item:
            flush()
            line = item.group(1)
        paragraph.append(line.lstrip("> ").strip() if line.startswith(">") else line)
    flush()
    if title is None:
        raise _fail(path, "no title (the first '# ' heading is the title)")
    if not drafts[0].paragraphs and not drafts[0].table:
        drafts = drafts[1:]  # an empty preamble is no section
    return title, authors, drafts


def _add_table_row(draft: _Draft, line: str, path: Path, number: int) -> None:
    """Add a pipe-table row to the section's table; separator rows are skipped, widths checked."""
    if draft.table_closed:
        return  # only a section's first table is kept
    cells = _split_row(line)
    if all(_TABLE_SEPARATOR.match(c) for c in cells):
        return
    if draft.table and len(cells) != len(draft.table[0]):
        raise _fail(path, f"table row has {len(cells)} cells, header has {len(draft.table[0])}", number)
    draft.table.append(tuple(cells))


def _split_row(line: str) -> list[str]:
    """The cells of `| a | b |` (a trailing pipe optional, `\\|` an escaped pipe)."""
    body = line.strip()[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [_clean_inline(c.replace("\\|", "|").strip()) for c in re.split(r"(?<!\\)\|", body)]


def _clean_inline(text: str) -> str:
    """Drop HTML comments and images, keep link text, remove bold and code markers, collapse whitespace."""
    text = re.sub(r"<!--.*?-->", "", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = text.replace("**", "").replace("`", "")
    return " ".join(text.split())


def _split_authors(text: str) -> tuple[str, ...]:
    parts = re.split(r",|;|\band\b|&", text)
    return tuple(p.strip() for p in parts if p.strip())


# ----------------------------------------------------------------------------------------------------
# PDF

_NUMBERED = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVXLC]+\.)\s+(?=\S)")
_ABSTRACT_INLINE = re.compile(r"^(abstract)\s*[—–:.-]\s*(\S.*)$", re.IGNORECASE)
_SMALL_WORDS = frozenset("a an and as at by for from in of on or the to via vs with".split())
_NAME_PARTICLES = frozenset("de del der la le van von da di du bin al".split())


def read_pdf(path: str | Path) -> Document:
    """Read a PDF paper through pypdf's text extraction; the id is the file stem.

    The title is the metadata title when present, else the first line; an author-looking line after it
    (or the metadata author) gives the authors. Headings are short lines (<= 8 words, no final
    punctuation) that are numbered ("2.1 Method", "III. RESULTS") with a Title Case / ALL CAPS /
    categorised rest, or unnumbered Title Case / ALL CAPS lines that `categorize` knows, or "Abstract"
    (also inline: "Abstract—We ..."). Section numbers are dropped from headings. Line-end hyphenation is
    undone. PDF sections have no tables (extracted table cells read as text).
    """
    path = Path(path)
    data = _read_bytes(path)
    if not data:
        raise _fail(path, "empty file")
    if b"%PDF-" not in data[:1024]:
        raise _fail(path, "not a readable PDF (no %PDF header)")
    pages, meta_title, meta_authors = _extract_pdf(path, data)
    lines = [ln.strip() for page in pages for ln in unicodedata.normalize("NFKC", page).splitlines()]
    lines = [ln for ln in lines if ln and not re.fullmatch(r"\d{1,4}", ln)]  # page numbers
    if not lines:
        raise _fail(path, "no extractable text (scanned pages? run OCR first)")
    title, lines = _pdf_title(lines, meta_title)
    authors, lines = _pdf_authors(lines, meta_authors)
    return Document(path.stem, title, authors, _pdf_sections(lines), str(path))


class _LogCollector(logging.Handler):
    """Collects pypdf's warnings, which often say why a file is broken better than the exception."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _extract_pdf(path: Path, data: bytes) -> tuple[list[str], str, tuple[str, ...]]:
    """Page texts, metadata title ("" if none or useless) and metadata authors; one-line errors."""
    try:
        from pypdf import PdfReader  # only PDF reading needs it
    except ImportError:
        raise _fail(path, "reading PDFs needs pypdf (pip install pypdf)") from None

    logger = logging.getLogger("pypdf")
    collector, propagate = _LogCollector(), logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                _decrypt(reader, path)
            pages = [page.extract_text() or "" for page in reader.pages]
            meta = reader.metadata or {}
            title = str(meta.get("/Title") or "").strip()
            author = str(meta.get("/Author") or "").strip()
    except DocumentError:
        raise
    except Exception as exc:  # pypdf raises many types on corrupt input
        reason = collector.messages[0] if collector.messages else (str(exc) or type(exc).__name__)
        raise _fail(path, f"not a readable PDF ({reason[:160]})") from exc
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagate
    if re.match(r"(untitled|microsoft word\b)", title, re.IGNORECASE) or title == path.stem:
        title = ""
    return pages, " ".join(title.split()), _split_authors(author) if author else ()


def _decrypt(reader, path: Path) -> None:
    """Open a PDF encrypted with an empty user password, or fail with a one-line error."""
    try:
        ok = reader.decrypt("")
    except Exception as exc:
        raise _fail(path, f"encrypted PDF, cannot decrypt ({str(exc)[:120] or type(exc).__name__})") from exc
    if not ok:
        raise _fail(path, "encrypted PDF (password required)")


def _pdf_title(lines: list[str], meta_title: str) -> tuple[str, list[str]]:
    """The title and the remaining lines: metadata title (skipping the lines that repeat it) or line 1."""
    if not meta_title:
        return lines[0], lines[1:]
    norm = meta_title.lower()
    rest = list(lines)
    while rest and rest[0].lower() in norm and not _pdf_heading(rest[0]):
        rest.pop(0)
    return meta_title, rest


def _pdf_authors(lines: list[str], meta_authors: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """Authors from the metadata or from an author-looking line right after the title."""
    if lines and _looks_like_authors(lines[0]):
        return meta_authors or _split_authors(_strip_markers(lines[0])), lines[1:]
    return meta_authors, lines


def _strip_markers(line: str) -> str:
    """Remove affiliation markers (digits, *, daggers) that follow author names."""
    return re.sub(r"(?<=[A-Za-z.])[\d*†‡§¶]+", "", line)


def _looks_like_authors(line: str) -> bool:
    """A comma/and-separated list of 1-12 names, each 2-4 capitalised words (initials and particles ok)."""
    if line.endswith(".") or _pdf_heading(line):
        return False
    names = _split_authors(_strip_markers(line))
    if not 1 <= len(names) <= 12:
        return False
    for name in names:
        words = name.split()
        if not 2 <= len(words) <= 4:
            return False
        if not all(re.fullmatch(r"[A-Z][\w'.-]*", w) or w in _NAME_PARTICLES for w in words):
            return False
    return True


def _pdf_heading(line: str) -> str | None:
    """The heading text (section number removed) when a PDF line looks like a section heading."""
    text = line.strip()
    if not text or text[-1] in ".,;:" or len(text.split()) > 8:
        return None
    if text.lower() == "abstract":
        return text
    numbered = _NUMBERED.match(text)
    rest = text[numbered.end() :] if numbered else text
    words = rest.split()
    if not re.search(r"[A-Za-z]{2}", rest) or any(re.fullmatch(r"[\d.,%±+()-]+", w) for w in words):
        return None
    styled = _is_title_case(rest) or _is_all_caps(rest)
    category = section_category(rest)
    if numbered and (styled or category is not None):
        return rest
    if not numbered and styled and category is not None:
        return rest
    return None


def _is_title_case(text: str) -> bool:
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    if not words or not words[0][0].isupper():
        return False
    return all(w[0].isupper() or w.lower() in _SMALL_WORDS for w in words)


def _is_all_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def _pdf_sections(lines: list[str]) -> tuple[Section, ...]:
    """Split body lines at detected headings; text before the first heading becomes "Abstract"."""
    drafts: list[tuple[str, list[str]]] = [("Abstract", [])]
    for line in lines:
        inline = _ABSTRACT_INLINE.match(line)
        heading = _pdf_heading(line)
        if inline:
            drafts.append((inline.group(1), [inline.group(2)]))
        elif heading:
            drafts.append((heading, []))
        else:
            drafts[-1][1].append(line)
    preamble, rest = drafts[0], drafts[1:]
    # Text ahead of an explicit Abstract heading is affiliations and the like, not content.
    if not preamble[1] or (rest and rest[0][0].lower() == "abstract"):
        drafts = rest
    return tuple(
        Section(heading, section_category(heading), _sentences([_join_lines(body)]))
        for heading, body in drafts
    )


def _join_lines(lines: list[str]) -> str:
    """Join extracted lines into one paragraph, undoing hyphenation at line ends.

    "inter-" + "esting" -> "interesting"; before a capital or digit the hyphen is part of a name and
    stays ("BERT-" + "Base" -> "BERT-Base"). A compound split after its hyphen ("end-" + "to-end") loses
    the hyphen too: the text cannot tell it from a syllable break.
    """
    out = ""
    for line in lines:
        if re.search(r"[A-Za-z]-$", out) and line[:1].islower():
            out = out[:-1] + line
        elif re.search(r"[A-Za-z0-9]-$", out) and line[:1].isalnum():
            out += line
        else:
            out = f"{out} {line}" if out else line
    return out


# ----------------------------------------------------------------------------------------------------
# Files


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a one-line DocumentError (missing, a directory, unreadable)."""
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "is a directory, not a document file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror or exc})") from exc


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM is allowed); a decoding error names the byte offset."""
    data = _read_bytes(path)
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + bom
        raise _fail(path, f"not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset})") from None


def load_document(path: str | Path) -> Document:
    """Read a paper by suffix (.md/.markdown/.txt as Markdown, .pdf through pypdf), checked non-empty."""
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such file")
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        doc = read_markdown(path)
    elif suffix in PDF_SUFFIXES:
        doc = read_pdf(path)
    else:
        supported = ", ".join(MARKDOWN_SUFFIXES + PDF_SUFFIXES)
        raise _fail(path, f"unsupported file type '{suffix or '(none)'}' (supported: {supported})")
    if not any(s.sentences for s in doc.sections):
        raise _fail(path, "empty document (no text in any section)")
    return doc
