"""The flow that ``pgflow demo`` runs: a small pipeline with a fan-out, a retry and a fan-in.

- ``fetch_articles`` lists the articles of a (simulated) feed;
- ``count_words`` is a map step: one task per article, run in parallel. The article served by
  the slow mirror times out on its first attempt and succeeds on the retry, in every run:
  the failure depends on the attempt number, so each run shows exactly one retried task;
- ``summarise`` is a fan-in step: it gets the list and every count, in order.

The sleeps stand in for network I/O. Serve the flow from a worker of your own with::

    pgflow worker pgflow.demo:flow
"""

from __future__ import annotations

import asyncio
from typing import TypedDict

from pgflow.context import Context
from pgflow.dsl import Flow

#: Where every article is fetched from, but one.
FEED_HOST = "feed.example.com"
#: The host of the one article whose first fetch times out.
FLAKY_HOST = "slow-mirror.example.com"


class DemoInput(TypedDict):
    articles: int


class Article(TypedDict):
    id: int
    title: str
    url: str


class WordCount(TypedDict):
    id: int
    words: int
    attempt: int


class Summary(TypedDict):
    articles: int
    words: int
    longest: str | None
    retried: list[str]


class MirrorTimeoutError(Exception):
    """A transient failure: the retry fetches the article."""


flow = Flow("pgflow_demo", input=DemoInput, max_attempts=3, base_delay=1, timeout=10)


@flow.array
async def fetch_articles(run: DemoInput) -> list[Article]:
    await asyncio.sleep(0.3)
    flaky = run["articles"] // 2
    return [
        {
            "id": n,
            "title": f"article {n + 1}",
            "url": f"https://{FLAKY_HOST if n == flaky else FEED_HOST}/articles/{n + 1}",
        }
        for n in range(run["articles"])
    ]


@flow.map(fetch_articles)
async def count_words(article: Article, ctx: Context) -> WordCount:
    await asyncio.sleep(0.06 * (1 + article["id"] % 4))
    if FLAKY_HOST in article["url"] and ctx.attempt == 1:
        raise MirrorTimeoutError(f"{article['url']} timed out (transient: pgflow retries it)")
    # A stand-in for counting the words of the fetched page, the same in every run.
    return {"id": article["id"], "words": 200 + article["id"] * 37 % 500, "attempt": ctx.attempt}


@flow.step(fetch_articles, count_words)
def summarise(run: DemoInput, articles: list[Article], counts: list[WordCount]) -> Summary:
    longest = max(
        zip(counts, articles, strict=True), key=lambda pair: pair[0]["words"], default=None
    )
    return {
        "articles": len(articles),
        "words": sum(count["words"] for count in counts),
        "longest": longest[1]["title"] if longest else None,
        "retried": [
            article["title"]
            for count, article in zip(counts, articles, strict=True)
            if count["attempt"] > 1
        ],
    }
