"""The report page: one HTML string with inline CSS and JS (no network, no external libraries)."""

from __future__ import annotations

import html

_CSS = r"""
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#1d232b;color:#fff;padding:10px 18px}header h1{font-size:18px;margin:0}
main{padding:12px 18px}section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;margin-bottom:14px}
h2{font-size:15px;margin:4px 0 8px}table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:18px}.filters{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:8px}
.ex{border:1px solid #e3e6ea;border-radius:5px;margin:6px 0;background:#fff}
.exhead{display:flex;gap:10px;align-items:center;padding:6px;cursor:pointer}.exhead img{width:72px;height:72px;object-fit:contain;background:#eee}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;color:#fff}
.verified{background:#2e8b57}.failed{background:#c0392b}.unlabelled{background:#7f8c8d}
.detail{padding:8px 12px;border-top:1px solid #eee}.cand{border-left:3px solid #ccc;margin:8px 0;padding:4px 8px}
.cand.pass{border-color:#2e8b57}.cand.chosen{background:#f1fbf4}
pre{background:#f4f5f7;padding:6px;overflow:auto;font-size:12px;margin:4px 0}
.kw{color:#8e44ad;font-weight:600}.str{color:#b35c00}.com{color:#7f8c8d}.num{color:#1565c0}
.pager{margin:8px 0}.pager button{margin-right:6px}.muted{color:#6b7480}
.imgwrap{position:relative;display:inline-block}.imgwrap svg{position:absolute;left:0;top:0}
"""

_JS = r"""
const S = window.VPD_SUMMARY || {}, IDX = window.VPD_INDEX || [];
const FILES = document.body.dataset.files;
const PAGE = S.page_size || 50, LIST_PAGE = 25;
const COLORS = ['#e6194b','#3cb44b','#4363d8','#f58231','#911eb4','#42d4f4','#f032e6','#bfef45','#469990','#9A6324'];
const pages = {}, waiting = {};
let filtered = IDX.slice(), listPage = 0;
function esc(s){return String(s===null||s===undefined?'':s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));}
function el(id){return document.getElementById(id);}
window.VPD_PAGE = function(i, data){pages[i]=data; (waiting[i]||[]).forEach(f=>f()); delete waiting[i];};
function loadPage(i, cb){ if(pages[i]){cb();return;} (waiting[i]=waiting[i]||[]).push(cb);
  if(waiting[i].length>1) return; const s=document.createElement('script');
  s.src=FILES+'/pages/page-'+String(i).padStart(5,'0')+'.js'; document.body.appendChild(s);}
function highlight(code){
  const KW=/\b(def|return|if|elif|else|for|in|while|and|or|not|is|None|True|False|lambda|len|class)\b/g;
  return code.split('\n').map(line=>{const h=line.indexOf('#'); let body=h>=0?line.slice(0,h):line, com=h>=0?line.slice(h):'';
    body=esc(body).replace(/(&quot;.*?&quot;|&#39;.*?&#39;)/g,'<span class="str">$1</span>').replace(KW,'<span class="kw">$1</span>').replace(/\b(\d+)\b/g,'<span class="num">$1</span>');
    return body+(com?'<span class="com">'+esc(com)+'</span>':'');}).join('\n');}
function table(rows, head){return '<table>'+(head?'<tr>'+head.map(h=>'<th>'+esc(h)+'</th>').join('')+'</tr>':'')+rows.map(r=>'<tr>'+r.map(c=>'<td>'+esc(c)+'</td>').join('')+'</tr>').join('')+'</table>';}
function pct(x){return x===null||x===undefined?'–':(100*x).toFixed(1)+'%';}
function summary(){
  const sm=S.summary||{}; let h='';
  const ks=sm.ks||[]; const pk=sm.pass_at_k||{};
  h+='<div class="grid"><div><h2>Examples</h2>'+table(Object.entries(sm.verdicts||{}).map(([k,v])=>[k,v]).concat([['total',sm.examples||0]]))+'</div>';
  h+='<div><h2>pass@k by question type</h2>'+table(Object.entries(pk).map(([q,ys])=>[q].concat(ys.map(pct))), ['qtype'].concat(ks.map(k=>'pass@'+k)))+'</div>';
  h+='<div><h2>Failure categories (candidates)</h2>'+table(Object.entries(sm.failures||{}))+'</div>';
  h+='<div><h2>Tool calls</h2>'+table(Object.entries(sm.tools||{}).map(([t,v])=>[t,v.calls,v.mean_ms.toFixed(2)+' ms',v.p50_ms.toFixed(2)+' ms']),['tool','calls','mean','p50'])+
     '<p>cache hit rate: '+pct(sm.cache_hit_rate)+'</p></div>';
  const rep=S.report||{}; const extra=[];
  for(const k of ['llm','llm_tokens','tokens','stage_times','stages','timings','cache']) if(rep[k]!==undefined) extra.push([k, JSON.stringify(rep[k])]);
  if(extra.length) h+='<div><h2>Run report</h2>'+table(extra)+'</div>';
  h+='</div><div class="grid">'+(S.plots||[]).map(p=>'<img alt="'+esc(p)+'" src="'+FILES+'/'+p+'" style="max-width:480px">').join('')+'</div>';
  if(S.bad_lines) h+='<p class="muted">'+S.bad_lines+' unreadable line(s) skipped.</p>';
  el('summary').innerHTML=h;
  const ev=S.evals||{}; if(Object.keys(ev).length){let e='<h2>Evaluations</h2>';
    for(const [where,r] of Object.entries(ev)){const m=r.metrics||{}; e+='<h3>'+esc(where)+' · '+esc(r.benchmark||'')+' <span class="muted">scorer '+esc(r.scorer_version||'')+'</span></h3>'+
      table(Object.entries(m).filter(([k,v])=>typeof v!=='object').map(([k,v])=>[k,typeof v==='number'?v.toFixed(4):v]));}
    el('evals').innerHTML=e;} else el('evals').style.display='none';
}
function options(sel, values){sel.innerHTML='<option value="">all</option>'+values.map(v=>'<option>'+esc(v)+'</option>').join('');}
function setupFilters(){
  const uniq=f=>[...new Set(IDX.flatMap(f))].sort();
  options(el('f-verdict'), uniq(x=>[x.v])); options(el('f-qtype'), uniq(x=>[x.t]));
  options(el('f-cat'), uniq(x=>[x.c])); options(el('f-tool'), uniq(x=>x.tools||[]));
  for(const id of ['f-verdict','f-qtype','f-cat','f-tool']) el(id).addEventListener('change', applyFilters);
  el('f-text').addEventListener('input', applyFilters);
  document.querySelectorAll('[data-verdict]').forEach(b=>b.addEventListener('click',()=>{el('f-verdict').value=b.dataset.verdict; applyFilters();}));
}
function applyFilters(){
  const v=el('f-verdict').value,t=el('f-qtype').value,c=el('f-cat').value,tool=el('f-tool').value,q=el('f-text').value.toLowerCase();
  filtered=IDX.filter(x=>(!v||x.v===v)&&(!t||x.t===t)&&(!c||x.c===c)&&(!tool||(x.tools||[]).includes(tool))&&
    (!q||(x.q+' '+x.id+' '+(x.a||'')).toLowerCase().includes(q)));
  listPage=0; renderList();
}
function svgBoxes(w,h,dw,dh,groups){
  const sx=dw/w, sy=dh/h; let s='<svg width="'+dw+'" height="'+dh+'">';
  groups.forEach((g,gi)=>{const col=COLORS[gi%COLORS.length]; g.boxes.forEach((b,bi)=>{
    s+='<rect class="box" x="'+b[0]*sx+'" y="'+b[1]*sy+'" width="'+(b[2]-b[0])*sx+'" height="'+(b[3]-b[1])*sy+'" fill="none" stroke="'+col+'" stroke-width="2"><title>'+esc(g.query+' '+(b[4]||''))+'</title></rect>';
    if(g.ids) s+='<text x="'+(b[0]*sx+2)+'" y="'+(b[1]*sy+12)+'" fill="'+col+'" font-size="12" font-weight="bold">['+(bi)+']</text>';});});
  return s+'</svg>';
}
function imageWithBoxes(x, groups, maxw){
  if(!x.th) return '<div class="muted">(image not available)</div>';
  const scale=Math.min(1, maxw/Math.max(x.w,x.h)); const dw=Math.round(x.w*scale), dh=Math.round(x.h*scale);
  return '<div class="imgwrap"><img src="'+FILES+'/thumbs/'+x.th+'" width="'+dw+'" height="'+dh+'">'+svgBoxes(x.w,x.h,dw,dh,groups)+'</div>';
}
function renderDetail(x, box){
  const page=pages[Math.floor(x.i/PAGE)], d=page[x.i%PAGE]; let h='';
  let shown=d.candidates.find(c=>c.index===d.chosen) || d.candidates[0];
  if(shown && !shown.boxes.length) shown=d.candidates.find(c=>c.boxes.length) || shown;
  h+='<div class="grid"><div>'+imageWithBoxes(x, shown?shown.boxes:[], 384)+'<div class="muted">detections of '+(shown?'candidate #'+shown.index:'–')+', one colour per tool call</div></div><div style="flex:1;min-width:320px">';
  h+='<p><b>Question:</b> '+esc(x.q)+(d.choices?'<br><b>Choices:</b> '+d.choices.map(esc).join(' · '):'')+'<br><b>Label:</b> '+esc(x.a)+'</p>';
  if(d.rationale) h+='<p class="rationale"><b>Rationale:</b> '+esc(d.rationale)+'</p>';
  d.candidates.forEach(c=>{h+='<div class="cand'+(c.verdict?' pass':'')+(c.index===d.chosen?' chosen':'')+'"><b>#'+c.index+'</b> '+esc(c.status)+
     ' · answer: <code>'+esc(JSON.stringify(c.answer))+'</code> · '+(c.verdict?'✔ pass':'✘ '+esc(c.category||''))+(c.error?'<br><span class="muted">'+esc(c.error)+'</span>':'')+
     '<details><summary>code</summary><pre>'+highlight(c.program||'(no code)')+'</pre></details><details class="trace"><summary>trace</summary><pre>'+esc(c.trace)+'</pre></details></div>';});
  box.innerHTML=h+'</div></div>';
}
function toggle(x, item){
  let box=item.querySelector('.detail'); if(box){box.remove(); return;}
  box=document.createElement('div'); box.className='detail'; box.textContent='loading…'; item.appendChild(box);
  loadPage(Math.floor(x.i/PAGE), ()=>renderDetail(x, box));
}
function renderList(){
  const n=filtered.length, pages_=Math.max(1,Math.ceil(n/LIST_PAGE)); listPage=Math.min(listPage,pages_-1);
  el('count').textContent=n+' example(s) · page '+(listPage+1)+' of '+pages_;
  const list=el('list'); list.innerHTML='';
  filtered.slice(listPage*LIST_PAGE,(listPage+1)*LIST_PAGE).forEach(x=>{
    const item=document.createElement('div'); item.className='ex'; item.dataset.id=x.id;
    item.innerHTML='<div class="exhead">'+(x.th?'<img loading="lazy" src="'+FILES+'/thumbs/'+x.th+'">':'')+'<div><span class="badge '+esc(x.v)+'">'+esc(x.v)+'</span> <span class="muted">'+esc(x.t)+' · '+esc(x.id)+' · '+x.n+' candidate(s)'+(x.c!=='none'?' · '+esc(x.c):'')+'</span><br>'+esc(x.q)+' <b>→ '+esc(x.a)+'</b></div></div>';
    item.querySelector('.exhead').addEventListener('click',()=>toggle(x,item)); list.appendChild(item);});
}
function renderLskd(){
  const L=S.lskd||[]; if(!L.length){el('lskd').style.display='none';return;}
  let h='<h2>LSKD triples ('+L.length+')</h2>';
  L.slice(0,60).forEach(t=>{const groups=[{query:'region',ids:true,boxes:(t.regions||[]).map(r=>Array.isArray(r)?r:[r.x0,r.y0,r.x1,r.y1])}];
    h+='<div class="ex"><div class="grid" style="padding:6px">'+imageWithBoxes(t,groups,220)+'<div><b>Q:</b> '+esc(t.q)+'<br><b>A:</b> '+esc(t.a)+'<br><b>R:</b> '+esc(t.r)+
      '<br><span class="muted">critic score: '+(t.score===null||t.score===undefined?'–':Number(t.score).toFixed(3))+'</span></div></div></div>';});
  el('lskd').innerHTML=h;
}
document.addEventListener('DOMContentLoaded',()=>{
  summary(); setupFilters(); renderList(); renderLskd();
  el('prev').addEventListener('click',()=>{if(listPage>0){listPage--;renderList();}});
  el('next').addEventListener('click',()=>{if((listPage+1)*LIST_PAGE<filtered.length){listPage++;renderList();}});
});
"""


def render_page(files_dir: str, *, title: str) -> str:
    """The report HTML; ``files_dir`` is the folder (relative to the page) holding data and images."""
    t = html.escape(title)
    f = html.escape(files_dir)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title><style>{_CSS}</style>
<script src="{f}/summary.js"></script><script src="{f}/index.js"></script></head>
<body data-files="{f}"><header><h1>{t}</h1></header><main>
<section id="summary"></section>
<section id="evals"></section>
<section><h2>Examples</h2>
<div class="filters">
 <label>verdict <select id="f-verdict"></select></label>
 <label>question type <select id="f-qtype"></select></label>
 <label>failure <select id="f-cat"></select></label>
 <label>tool <select id="f-tool"></select></label>
 <input id="f-text" type="search" placeholder="search question / id / label">
 <button data-verdict="verified">verified only</button><button data-verdict="failed">failed only</button><button data-verdict="">all</button>
</div>
<div class="pager"><button id="prev">◀ prev</button><button id="next">next ▶</button><span id="count"></span></div>
<div id="list"></div></section>
<section id="lskd"></section>
</main><script>{_JS}</script></body></html>
"""
