// Drives the review console in the system's Chromium, one scenario per
// run; `tests/tests/browser.rs` prepares a real server and phone, runs a
// scenario, and checks what it did on the server and the phone.
//
//   FB_URL=http://127.0.0.1:PORT FB_PASSWORD=… FB_SHOTS=dir \
//   FB_ARGS='{…}' node console.mjs SCENARIO
//
// Every page must load only from the server's origin, run no inline
// script, and raise no script error or dialog. A screenshot of each page
// goes to FB_SHOTS. Lines starting with `metric ` report first-load
// weight and first paint, for the benchmark notes.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const url = process.env.FB_URL;
const password = process.env.FB_PASSWORD;
const shots = process.env.FB_SHOTS;
const args = JSON.parse(process.env.FB_ARGS || "{}");
const scenario = process.argv[2];
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!url || !password || !shots || !scenario) {
  console.error("usage: FB_URL=… FB_PASSWORD=… FB_SHOTS=… node console.mjs SCENARIO");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const problems = [];
function fail(message) {
  throw new Error(message);
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });

async function session(user) {
  const context = await browser.newContext({ locale: "zh-CN" });
  const page = await context.newPage();
  page.on("request", (r) => {
    if (!r.url().startsWith(url + "/")) problems.push(`request left the origin: ${r.url()}`);
  });
  page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 40[0-9]/.test(m.text())) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  page.on("dialog", (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    d.dismiss();
  });
  await page.goto(url + "/login");
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login")), page.click('button[type="submit"]')]);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${scenario}-${name}.png`, fullPage: true });
}

/// First-load weight (every response body) and first contentful paint of
/// a fresh load of `path`.
async function measure(page, path, name) {
  let bytes = 0;
  const count = (r) => r.body().then((b) => (bytes += b.length)).catch(() => {});
  page.on("response", count);
  await page.goto(url + path, { waitUntil: "load" });
  const fcp = await page.evaluate(
    () =>
      new Promise((done) => {
        const seen = () => performance.getEntriesByName("first-contentful-paint")[0];
        if (seen()) return done(seen().startTime);
        new PerformanceObserver(() => seen() && done(seen().startTime)).observe({ type: "paint", buffered: true });
        setTimeout(() => done(null), 2000);
      }),
  );
  page.off("response", count);
  console.log(`metric ${name} first_load_bytes=${bytes} first_contentful_paint_ms=${fcp}`);
}

async function clickAndWait(page, selector) {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

const scenarios = {
  // Each role sees its own menu, and the review buttons only where the
  // rules allow them.
  async menus() {
    for (const u of args.users) {
      const page = await session(u.name);
      await shot(page, `home-${u.name}`);
      const menu = await page.$$eval("header nav a", (as) => as.map((a) => a.getAttribute("href")));
      if (JSON.stringify(menu) !== JSON.stringify(u.menu)) fail(`${u.name}: menu ${menu}, expected ${u.menu}`);
      const resp = await page.goto(`${url}/inspections/${args.id}`);
      if (resp.status() !== u.page) fail(`${u.name}: inspection page ${resp.status()}, expected ${u.page}`);
      const approve = await page.$("form#approve button");
      if (!!approve !== u.approve) fail(`${u.name}: approve button ${!!approve}, expected ${u.approve}`);
      await shot(page, `inspection-${u.name}`);
      // A forged approval from the page itself, with the page's own token.
      if (u.page === 200 && !u.approve) {
        const status = await page.evaluate(async (id) => {
          const csrf = document.querySelector('input[name="csrf"]').value;
          const r = await fetch(`/inspections/${id}/approve`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: `csrf=${csrf}`,
          });
          return r.status;
        }, args.id);
        if (status !== 403) fail(`${u.name}: forged approval answered ${status}`);
      }
      await page.context().close();
    }
  },

  // Comment, then return with a reason, by mouse.
  async return() {
    const page = await session("wang.fang");
    await measure(page, "/queue", "queue");
    await shot(page, "queue");
    await clickAndWait(page, `a[href^="/inspections/${args.id}"]`);
    await measure(page, `/inspections/${args.id}`, "inspection");
    await shot(page, "inspection");
    await page.fill("form#comment textarea", args.comment);
    await clickAndWait(page, "form#comment button");
    const history = await page.textContent("table.events");
    if (!history.includes(args.comment)) fail("the comment is not in the history");
    await page.fill("form#return textarea", args.reason);
    await clickAndWait(page, "form#return button");
    await shot(page, "after-return");
    // A return without a reason is stopped by the page and, if forced, by
    // the server.
    await page.goto(`${url}/inspections/${args.other}`);
    const status = await page.evaluate(async (id) => {
      const csrf = document.querySelector('input[name="csrf"]').value;
      const r = await fetch(`/inspections/${id}/return`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `csrf=${csrf}&comment=`,
      });
      return r.status;
    }, args.other);
    if (status !== 400) fail(`a return without a reason answered ${status}`);
    const resp = await page.goto(`${url}/inspections/not-an-id`);
    await shot(page, "error");
    if (resp.status() !== 404) fail(`an unknown inspection answered ${resp.status()}`);
  },

  async approve() {
    const page = await session("wang.fang");
    await page.goto(`${url}/inspections/${args.id}`);
    await clickAndWait(page, "form#approve button");
    await page.goto(`${url}/inspections/${args.id}`);
    const status = await page.textContent("h1 .status");
    if (!/已通过/.test(status)) fail(`after approval the page says ${status}`);
    await shot(page, "approved");
  },

  // Three inspections reviewed with the keyboard alone: j and Enter open
  // the first waiting, a approves and opens the next.
  async keyboard() {
    const page = await session("wang.fang");
    await page.goto(`${url}/queue`);
    await page.keyboard.press("j");
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    const seen = [];
    for (let i = 0; i < 3; i++) {
      seen.push(new URL(page.url()).pathname.split("/")[2]);
      await shot(page, `key-${i}`);
      await Promise.all([page.waitForNavigation(), page.keyboard.press("a")]);
    }
    console.log(`approved ${JSON.stringify(seen)}`);
  },

  // The county office lands on coverage, drills down a level and
  // downloads the XLSX of what it sees.
  async county() {
    const page = await session("zhou.min");
    if (new URL(page.url()).pathname !== "/coverage") fail(`the county office landed on ${page.url()}`);
    await measure(page, "/coverage", "coverage");
    await shot(page, "coverage");
    await clickAndWait(page, `table.drill a[href^="/coverage?area=${args.township}"]`);
    const h1 = await page.textContent("h1");
    if (!h1.includes(args.township)) fail(`drilled into ${h1}`);
    await shot(page, "coverage-township");
    const period = await page.textContent(".period");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click('ul.downloads a[href*="coverage?format=xlsx"]'),
    ]);
    await download.saveAs(args.out);
    console.log(`downloaded ${download.suggestedFilename()} period ${period}`);
    // A supervisor has no coverage page.
    const sup = await session("wang.fang");
    const resp = await sup.goto(`${url}/coverage`);
    if (resp.status() !== 403) fail(`a supervisor's coverage page answered ${resp.status()}`);
    const menu = await sup.$$eval("header nav a", (as) => as.map((a) => a.getAttribute("href")));
    if (menu.includes("/coverage")) fail("a supervisor's menu offers coverage");
  },

  // A finding raised from an inspection, assigned and escalated.
  async finding() {
    const page = await session("wang.fang");
    await page.goto(`${url}/inspections/${args.id}`);
    await page.click("details.raise summary");
    await page.fill('form#raise input[name="title"]', args.title);
    await page.fill('form#raise textarea[name="description"]', "盖板破损");
    await page.fill('form#raise input[name="deadline"]', "2030-06-30");
    await clickAndWait(page, "form#raise button");
    const id = new URL(page.url()).pathname.split("/")[2];
    await shot(page, "raised");
    await page.fill('form#step-assign input[name="responsible"]', args.responsible);
    await page.fill('form#step-assign input[name="deadline"]', "2030-06-30");
    await clickAndWait(page, "form#step-assign button");
    await clickAndWait(page, "form#step-escalate button");
    const who = await page.textContent("td.responsible");
    if (who.trim() !== args.responsible) fail(`responsible shows ${who}`);
    await page.goto(`${url}/findings`);
    await shot(page, "board");
    if (!(await page.textContent("table.findings")).includes(args.title)) fail("the board does not list the finding");
    console.log(`finding ${id}`);
  },

  async close() {
    const page = await session("wang.fang");
    await page.goto(`${url}/findings/${args.id}`);
    await shot(page, "closure-requested");
    await page.fill("form#step-close textarea", "现场核查已整改");
    await clickAndWait(page, "form#step-close button");
    const status = await page.textContent("h1 .status");
    if (!/已销号/.test(status)) fail(`after closing the page says ${status}`);
    await shot(page, "closed");
  },

  // The administrator adds a user, and imports a registry with one bad
  // row: every problem is shown, nothing written.
  async admin() {
    const page = await session("root");
    await page.goto(`${url}/admin/users`);
    await page.fill('form#add-user input[name="name"]', "sun.li");
    await page.selectOption('form#add-user select[name="role"]', "supervisor");
    await page.fill('form#add-user input[name="areas"]', "410324101");
    await page.fill('form#add-user input[name="password"]', "sun li password");
    await clickAndWait(page, "form#add-user button");
    if (!(await page.textContent("table.users")).includes("sun.li")) fail("the new user is not listed");
    await shot(page, "users");
    await page.goto(`${url}/admin/registry`);
    await page.setInputFiles('form#registry input[type="file"]', args.bad);
    await Promise.all([page.waitForSelector(".problems"), page.click("form#registry button")]);
    const problems = await page.$$eval(".problems li", (li) => li.map((l) => l.textContent));
    await shot(page, "registry-refused");
    console.log(`problems ${JSON.stringify(problems)}`);
    await page.goto(`${url}/admin/audit?action=user_created`);
    await shot(page, "audit");
    if (!(await page.textContent("table.audit")).includes("sun.li")) fail("the audit log does not show the new user");
    await page.goto(`${url}/admin/devices`);
    await shot(page, "devices");
  },

  // Script in a site name and a note is text.
  async escaping() {
    const page = await session("wang.fang");
    for (const path of ["/queue", `/inspections/${args.id}`]) {
      await page.goto(url + path);
      const text = await page.textContent("main");
      if (!text.includes(args.name)) fail(`${path}: the site name is not shown as text`);
      if ((await page.$$("main script, main img[src=x]")).length) fail(`${path}: markup from a phone became elements`);
    }
    const note = await page.textContent(".note");
    if (!note.includes(args.note)) fail("the note is not shown as text");
    await shot(page, "escaped");
    // The language switch.
    await page.click("a.lang");
    const h = await page.textContent("aside h2");
    if (h !== "Location") fail(`English page heading ${h}`);
    await shot(page, "english");
  },
};

try {
  if (!scenarios[scenario]) fail(`no scenario ${scenario}`);
  await scenarios[scenario]();
  if (problems.length) fail(problems.join("\n"));
  console.log("ok");
} catch (e) {
  console.error(`scenario ${scenario}: ${e.message}`);
  for (const p of problems) console.error(p);
  process.exitCode = 1;
} finally {
  await browser.close();
}
