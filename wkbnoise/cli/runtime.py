"""Commands of the runtime: ``info`` and ``convert``."""

from __future__ import annotations

from ..errors import InputError
from ._output import emit, flag_bool

__all__ = ["RuntimeCommands"]


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


class RuntimeCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""

    def info(self, file=None, config=None, warmup=False, json=False):
        """Describe a weight file, or list the bundled MNIST zoo.

        With FILE: the architecture, each quantizable layer (name, kind, shape, number of weights,
        ||W||_inf in weight units), the parameter count (after BatchNorm folding) and, for an MNIST
        classifier (1x28x28 input), the clean float and int8 accuracy on the 1,000 bundled test images
        (int8: per-tensor symmetric quantize/dequantize of every quantizable layer).
        Without FILE: one row per zoo model with its parameter count and both accuracies (a progress bar on
        stderr while the five models are evaluated).

        Args:
            file: a model: a .safetensors weight file (zoo or PyTorch export with wkbnoise metadata, a file
                written by `convert`, or a Hugging Face weight file), a Hugging Face model folder
                (config.json + model.safetensors), an .onnx file or a Keras .h5/.hdf5 file.
            config: the Hugging Face config.json of a Hugging Face weight file (default: config.json beside FILE).
            warmup: compile the runtime's Numba kernels and print their first-call and warm times [s].
            json: print one JSON object instead of tables.
        """
        warmup = flag_bool(warmup, "warmup")
        as_json = flag_bool(json, "json")
        if config is not None and file is None:
            raise InputError("--config belongs to a BERT weight file: give the FILE too (info FILE --config "
                             "config.json).")
        from .. import zoo
        from ..runtime import load_model
        from ..runtime.summary import describe, is_mnist_classifier
        from ..runtime.summary import warmup as run_warmup

        if warmup:
            rows = run_warmup()
            text = "kernel                 first call [s]   warm call [s]   input\n" + "\n".join(
                f"{r['kernel']:<22} {r['first_call_s']:>14.3f} {r['call_s']:>15.4f}   {r['shape']}" for r in rows)
            emit({"warmup": rows}, text, as_json)
            return None
        if file is None:
            images, labels = zoo.test_set()
            rows = []
            names = zoo.names()
            if not as_json:
                from tqdm import tqdm

                names = tqdm(names, desc="zoo: clean float and int8 accuracy", unit="model", leave=False)
            for name in names:
                d = describe(zoo.load(name), images, labels)
                rows.append({"name": name, **{k: d[k] for k in ("arch", "parameters", "quantizable_weights",
                                                                "float_accuracy", "int8_accuracy")},
                             "layers": len(d["layers"])})
            text = ("bundled zoo (1,000 MNIST test images; int8 = per-tensor symmetric, every quantizable layer)\n"
                    "model         parameters  quantizable  layers   float acc   int8 acc\n" + "\n".join(
                        f"{r['name']:<12} {r['parameters']:>11,} {r['quantizable_weights']:>12,} {r['layers']:>7}"
                        f" {_pct(r['float_accuracy']):>11} {_pct(r['int8_accuracy']):>10}" for r in rows))
            emit({"zoo": rows}, text, as_json)
            return None
        model = load_model(file, config)
        images, labels = zoo.test_set() if is_mnist_classifier(model) else (None, None)
        d = describe(model, images, labels)
        lines = [f"file          {d['path']}", f"architecture  {d['arch']} ({d['task']}, {d['nodes']} graph nodes)",
                 f"config        {d['config']}", f"parameters    {d['parameters']:,} (BatchNorm folded)",
                 f"quantizable   {d['quantizable_weights']:,} weights in {len(d['layers'])} layers"]
        if "float_accuracy" in d:
            lines.append(f"accuracy      float {_pct(d['float_accuracy'])}, int8 {_pct(d['int8_accuracy'])} "
                         f"(1,000 bundled MNIST test images)")
        lines += ["", f"{'layer':<44} {'kind':<10} {'shape':<18} {'weights':>9} {'||W||_inf':>10}"]
        lines += [f"{ly['name']:<44} {ly['kind']:<10} {'x'.join(map(str, ly['shape'])):<18} {ly['n_weights']:>9,}"
                  f" {ly['w_inf']:>10.4f}" for ly in d["layers"]]
        emit(d, "\n".join(lines), as_json)
        return None

    def convert(self, src, out, config=None, json=False):
        """Convert a model to one safetensors file holding its weights and its graph.

        The file loads with no other file beside it (`info`, `eval`, `wkbnoise.load_model`) and gives the
        same outputs as SRC, bit for bit. BatchNorm is folded into the convolutions that precede it.

        Args:
            src: a model, as `info` takes it (.safetensors, Hugging Face folder, .onnx, .h5/.hdf5).
            out: the file to write; must end in .safetensors.
            config: the Hugging Face config.json of a Hugging Face weight file (default: beside SRC).
            json: print one JSON object instead of text.
        """
        as_json = flag_bool(json, "json")
        from pathlib import Path

        from ..errors import InputError
        from ..runtime import load_model, save_model

        out = Path(str(out))
        if out.suffix != ".safetensors":
            raise InputError(f"out={str(out)!r} must end in .safetensors (the converted file is safetensors).")
        if not out.parent.is_dir():
            raise InputError(f"out={str(out)!r}: the folder {str(out.parent)!r} does not exist.")
        model = load_model(src, config)
        save_model(model, out)
        d = {"src": str(src), "out": str(out), "arch": model.arch, "task": model.task,
             "nodes": len(model.graph.nodes), "quantized_layers": len(model.layers),
             "parameters": int(sum(a.size for a in model.params.values())), "bytes": out.stat().st_size}
        text = (f"wrote {d['out']}: {d['arch']} ({d['task']}), {d['nodes']} graph nodes, {d['quantized_layers']} "
                f"quantized layers, {d['parameters']:,} parameters ({d['bytes']:,} bytes)")
        emit(d, text, as_json)
        return None
