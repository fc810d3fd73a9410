// Cursor pages. A list call returns a ListRequest: await it for the first
// page, or iterate it with for await to walk every item of every page, each
// page fetched once, in order.

/** The wire shape of every paginated list. */
export interface ListEnvelope<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/** Fetches the page after cursor (undefined: the first). */
export type PageFetcher<T> = (cursor: string | undefined) => Promise<ListEnvelope<T>>;

/** One page of a list, able to fetch the next. */
export class Page<T> implements AsyncIterable<T> {
  readonly data: T[];
  readonly has_more: boolean;
  readonly next_cursor: string | null;

  constructor(envelope: ListEnvelope<T>, private readonly fetcher: PageFetcher<T>) {
    this.data = envelope.data;
    this.has_more = envelope.has_more;
    this.next_cursor = envelope.next_cursor;
  }

  /** hasNextPage reports whether another page follows. */
  hasNextPage(): boolean {
    return this.has_more && this.next_cursor !== null && this.next_cursor !== '';
  }

  /** getNextPage fetches the following page; it throws on the last. */
  async getNextPage(): Promise<Page<T>> {
    if (!this.hasNextPage()) throw new Error('no next page: check hasNextPage() first');
    return new Page(await this.fetcher(this.next_cursor as string), this.fetcher);
  }

  /** Iterates this page's items, then every following page's. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page: Page<T> = this;
    for (;;) {
      yield* page.data;
      if (!page.hasNextPage()) return;
      page = await page.getNextPage();
    }
  }
}

/**
 * ListRequest is a pending list call: awaitable for its first page
 * (nothing is sent until awaited or iterated), async-iterable over all items.
 */
export class ListRequest<T> implements Promise<Page<T>>, AsyncIterable<T> {
  private first: Promise<Page<T>> | undefined;
  readonly [Symbol.toStringTag] = 'ListRequest';

  constructor(private readonly fetcher: PageFetcher<T>, private readonly cursor?: string) {}

  private page(): Promise<Page<T>> {
    this.first ??= this.fetcher(this.cursor).then((env) => new Page(env, this.fetcher));
    return this.first;
  }

  then<R1 = Page<T>, R2 = never>(
    onfulfilled?: ((value: Page<T>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.page().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<Page<T> | R> {
    return this.page().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<Page<T>> {
    return this.page().finally(onfinally);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield* await this.page();
  }

  /** toArray collects every item of every page (mind large lists). */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this) out.push(item);
    return out;
  }
}
