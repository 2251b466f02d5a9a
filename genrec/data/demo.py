"""``demo``: a small synthetic dataset generated in the package, so every recipe runs offline.

Items belong to topics; a title is built from the topic's vocabulary, so text embeddings see the
topics. Each user has one or two favourite topics and walks forward along a topic's item chain (item
``j`` tends to be followed by items ``j + 1 .. j + 3`` of the same topic), with occasional jumps to
other favourite items and rare random ones: sequential signal for a model to learn, and popularity
alone does not capture it.
"""

from __future__ import annotations

import numpy as np

from genrec.data.dataset import Dataset

TOPICS = {
    "skin care": (["hydrating", "gentle", "brightening", "soothing"], ["serum", "cream", "toner", "cleanser"]),
    "hair care": (["nourishing", "volumizing", "smoothing", "repair"], ["shampoo", "conditioner", "mask", "oil"]),
    "makeup": (["matte", "long wear", "sheer", "velvet"], ["lipstick", "foundation", "mascara", "blush"]),
    "fragrance": (["floral", "citrus", "woody", "musk"], ["perfume", "cologne", "body mist", "eau de toilette"]),
    "nails": (["glossy", "quick dry", "gel", "pastel"], ["nail polish", "top coat", "nail file", "cuticle oil"]),
    "tools": (["travel", "professional", "ceramic", "compact"], ["hair dryer", "brush set", "curling iron", "mirror"]),
    "bath": (["lavender", "eucalyptus", "oatmeal", "sea salt"], ["bath bomb", "body wash", "soap bar", "scrub"]),
    "men": (["sport", "fresh", "classic", "sensitive"], ["shaving cream", "beard oil", "aftershave", "razor"]),
}
BRANDS = ["Aurora", "Bloom", "Cedar", "Dune", "Ember", "Fjord", "Grove", "Halo", "Iris", "Juniper"]


def generate_demo(n_users: int = 600, n_items: int = 320, seed: int = 7) -> Dataset:
    rng = np.random.default_rng(seed)
    topic_names = list(TOPICS)
    n_topics = len(topic_names)
    item_topic = np.arange(n_items) % n_topics
    rng.shuffle(item_topic)
    items = []
    for item_index in range(n_items):
        topic = topic_names[item_topic[item_index]]
        adjectives, nouns = TOPICS[topic]
        brand = BRANDS[(item_topic[item_index] * 3 + int(rng.integers(3))) % len(BRANDS)]
        title = f"{brand} {rng.choice(adjectives)} {rng.choice(nouns)} {int(rng.integers(1, 9)) * 50} ml"
        items.append({"item_id": item_index + 1, "title": title, "brand": brand, "categories": [topic.title()]})
    chains = [np.flatnonzero(item_topic == t) for t in range(n_topics)]  # item indices per topic, in order
    position = {int(item): (t, j) for t, chain in enumerate(chains) for j, item in enumerate(chain)}

    sequences = []
    for _ in range(n_users):
        favourites = rng.choice(n_topics, size=int(rng.integers(1, 3)), replace=False)
        length = int(rng.integers(6, 17))
        chain = chains[int(rng.choice(favourites))]
        current = int(chain[int(rng.integers(len(chain) // 2))])
        sequence = [current]
        while len(sequence) < length:
            draw = rng.random()
            if draw < 0.75:  # step forward along the current topic's chain
                t, j = position[current]
                current = int(chains[t][min(j + int(rng.integers(1, 4)), len(chains[t]) - 1)])
            elif draw < 0.95:  # jump to another favourite topic
                chain = chains[int(rng.choice(favourites))]
                current = int(chain[int(rng.integers(len(chain)))])
            else:  # noise
                current = int(rng.integers(n_items))
            sequence.append(current)
        sequences.append(np.asarray(sequence, dtype=np.int64) + 1)
    return Dataset("demo", sequences, items)
