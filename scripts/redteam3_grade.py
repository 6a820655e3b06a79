import os, sys, time
os.environ.setdefault("MEDMNIST_STANDIN", "/work/main/.data/medmnist")
from autograder import engine
from tests.conftest import CASES, EXPECTED, TEST_LIMITS
names = [l.strip() for l in open(sys.argv[1]) if l.strip()]
t = time.time()
res = engine.grade({n: (CASES / n).read_bytes() for n in names}, assignment="notebook10", limits=TEST_LIMITS, warm=True, workers=2)
print("wall", round(time.time() - t, 1))
for n in names:
    r = res[n]
    print(n, {k: s for k, (s, _) in r.item_scores().items()}, "review:", r.review, "exec", round(r.execution_time,1), "notes", r.notes)
    print("   expected", EXPECTED[n]["expect"], EXPECTED[n]["review"])
    for t in r.tests:
        if t.score < t.max_score: print("   -", t.name, "|", t.output[:300])
