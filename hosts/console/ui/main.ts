import { h, render } from 'preact'; render(h('p', null, 'hi'), document.getElementById('app')!);
