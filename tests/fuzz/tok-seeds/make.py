#!/usr/bin/env python3
"""Regenerate the seed tokenizers of tests/fuzz/fuzz_tokenizers.c with HF `tokenizers`
(the test venv's): small files in every layout qkv reads, trained on a few sentences.
Run from this directory: ../../../.venv-test/bin/python make.py"""
import json

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

corpus = ["Hello world, the cat sat on the mat.", "Once upon a time 1234 there was café naïve 日本語 🙂",
          "don't stop   believing\n\ttabs", "The capital of France is Paris."] * 20
byte_alphabet = pre_tokenizers.ByteLevel.alphabet()

# byte-level BPE with a Split pre-tokenizer (the Llama 3 layout), ignore_merges, a BOS template
t = Tokenizer(models.BPE(ignore_merges=True))
llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(llama3), behavior="isolated"),
                                           pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
t.decoder = decoders.ByteLevel()
t.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, initial_alphabet=byte_alphabet,
                                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>"]))
t.post_processor = processors.TemplateProcessing(
    single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
    special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])
t.save("bpe-split.json")

# SentencePiece-style BPE (the Llama 2 layout): ▁, byte fallback, <unk>, BOS
t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                               decoders.Strip(" ", 1, 0)])
t.train_from_iterator(corpus, trainers.BpeTrainer(
    vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]))
t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
t.save("spm.json")

# WordPiece (the BERT layout), then the same vocabulary as vocab.txt + tokenizer_config.json
t = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=20))
t.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, handle_chinese_chars=True)
t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
t.train_from_iterator(corpus, trainers.WordPieceTrainer(
    vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
t.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
t.decoder = decoders.WordPiece()
t.save("wordpiece.json")
vocab = json.load(open("wordpiece.json"))["model"]["vocab"]
with open("bert/vocab.txt", "w") as f:
    f.write("".join(k + "\n" for k, _ in sorted(vocab.items(), key=lambda kv: kv[1])))
with open("bert/tokenizer_config.json", "w") as f:
    json.dump({"do_lower_case": True, "tokenize_chinese_chars": True, "strip_accents": None, "cls_token": "[CLS]",
               "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]", "mask_token": "[MASK]",
               "model_max_length": 512}, f)

# GPT-2's vocab.json + merges.txt
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
t.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, initial_alphabet=byte_alphabet,
                                                  special_tokens=["<|endoftext|>"]))
t.model.save("gpt2")
