/** Parses a response body as JSON for assertions (tests look into shapes they assert on). */
// biome-ignore lint/suspicious/noExplicitAny: test assertions index freely into response bodies
export async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}
