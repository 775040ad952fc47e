/** The 4 KB JSON body every benchmark server answers with. */
const filler = 'x'.repeat(4096 - 40);
export const BODY_4K = Buffer.from(
  JSON.stringify({ id: 550, title: 'Bench', overview: filler })
    .slice(0, 4096 - 2)
    .concat('"}'),
);
