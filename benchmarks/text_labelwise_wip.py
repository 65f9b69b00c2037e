import sys, time
sys.path.insert(0, "/work/wt-text/benchmarks")
import labelwise
from labelwise.datasets.text import load_text_corpus
from text_baselines import split
name, kind = sys.argv[1], sys.argv[2]
df = load_text_corpus(name)
tr, va, te = split(df, kind)
train = __import__("pandas").concat([tr.assign(is_valid=False), va.assign(is_valid=True)])
t = time.time()
clf = labelwise.fit(train, target="label", progress=False, **({"task": kind} if kind == "multilabel" else {}))
print("fit", round(time.time() - t, 1), "s", clf.inputs.kinds)
t = time.time()
print(clf.evaluate(te, target="label"))
print("eval", round(time.time() - t, 1))
