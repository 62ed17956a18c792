// Shows a TOTP enrolment: the QR code and the manual key. The server's QR comes as SVG text;
// it is not parsed as markup (Trusted Types forbid that) but read for its viewBox and path
// data, checked, and rebuilt with DOM calls.

import { h } from './dom.js';

const PATH_DATA = /^[MmHhVvLlZz0-9 .,-]+$/;

export function qrElement(svgText) {
  const viewBox = /viewBox="([0-9 .]+)"/.exec(svgText)?.[1];
  const paths = [...svgText.matchAll(/<path\b[^>]*?\bd="([^"]*)"[^>]*>/g)];
  if (!viewBox || paths.length === 0) return h('p', { class: 'hint' }, 'The QR code is not available; type the key below instead.');
  const svg = h('svg', { viewBox, class: 'qr', role: 'img', 'aria-label': 'QR code for your authenticator app (the same key is written out below)' });
  svg.append(h('rect', { x: 0, y: 0, width: '100%', height: '100%', fill: '#fff' }));
  for (const [tag, data] of paths) {
    if (!PATH_DATA.test(data)) continue;
    const fill = /fill="(#[0-9a-fA-F]{3,6})"/.exec(tag)?.[1] ?? '#000';
    if (fill.toLowerCase() === '#fff' || fill.toLowerCase() === '#ffffff') continue;
    svg.append(h('path', { d: data, fill: '#000' }));
  }
  return svg;
}

/** The key in groups of four, as authenticator apps accept it. */
export function keyElement(secret) {
  const grouped = secret.replace(/(.{4})/g, '$1 ').trim();
  return h('p', { class: 'manual-key' }, h('span', { class: 'label' }, 'Key: '), h('code', { 'data-totp-secret': secret }, grouped));
}

export function enrolmentView(enrolment) {
  return h('div', { class: 'enrol' },
    h('figure', { class: 'qr-figure' }, qrElement(enrolment.qr_svg),
      h('figcaption', {}, 'Scan with an authenticator app (TOTP, 6 digits, 30 s).')),
    h('div', {},
      h('p', {}, 'Or enter this key by hand, as a time-based key:'),
      keyElement(enrolment.secret)));
}
