// Drives Tollgate's console in headless Chromium (Debian's, through playwright-core), as an
// operator would: open the address `tollgate console` printed, wait for a denial to appear
// among the last decisions, then press Approve on the first call waiting for approval and see
// the page confirm it and the request leave the list.
//
// Usage: node console_browser.mjs URL   → prints {"denial": "<row text>", "approved": "ap-…"}
import { chromium } from "playwright-core";

const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Without the network flags, Chromium's background connections are refused on a closed
  // network and slow every start.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  const denial = page.locator('#decisions tr[data-verdict="deny"]').first();
  await denial.waitFor({ timeout: 60_000 });
  const approve = page.locator("#approvals button.approve").first();
  await approve.waitFor({ timeout: 60_000 });
  const id = await approve.getAttribute("data-id");
  await approve.click();
  await page.locator("#notice", { hasText: `approved ${id}` }).waitFor({ timeout: 30_000 });
  await page.locator(`#approvals tr[data-id="${id}"]`).waitFor({ state: "detached", timeout: 30_000 });
  if (errors.length) throw new Error("the page threw: " + errors.join("; "));
  console.log(JSON.stringify({ denial: await denial.innerText(), approved: id }));
} finally {
  await browser.close();
}
