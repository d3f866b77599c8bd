-- COPY FROM STDIN with inline data, COPY TO STDOUT, \copy, COPY errors,
-- COPY inside transactions, defaults and serials during COPY.
CREATE TABLE c (id int PRIMARY KEY, name text, amount numeric, note text);
COPY c FROM STDIN;
1	one	1.5	\N
2	two	2.25	with\ttab
3	three	-3	back\\slash
\.
SELECT * FROM c ORDER BY id;
COPY c (id, name) FROM STDIN WITH (FORMAT csv, HEADER true);
id,name
4,"four, quoted"
5,""
6,
\.
COPY c FROM STDIN WITH (FORMAT csv, DELIMITER '|', NULL 'NULL');
7|seven|7.7|NULL
8|eight|8|"multi
line"
\.
COPY c TO STDOUT;
COPY c TO STDOUT WITH (FORMAT csv, HEADER true, FORCE_QUOTE (name));
COPY (SELECT id, upper(name) AS n FROM c WHERE id % 2 = 0 ORDER BY id DESC) TO STDOUT WITH (FORMAT csv);
COPY (SELECT * FROM c WHERE false) TO STDOUT;
-- a bad row: nothing of this COPY is kept
COPY c FROM STDIN;
10	ten	10	ok
11	eleven	not_a_number	bad
12	twelve	12	ok
\.
SELECT count(*) FROM c WHERE id >= 10;
-- duplicate key in COPY
COPY c (id, name) FROM STDIN;
13	x
1	dup
\.
-- wrong column count
COPY c (id, name) FROM STDIN;
14	a	b
\.
-- COPY into a table with serial and default columns
CREATE TABLE cs (id serial PRIMARY KEY, v text, n int DEFAULT 5, t text DEFAULT 'd');
COPY cs (v) FROM STDIN;
a
b
c
\.
COPY cs (v, n) FROM STDIN;
d	1
e	x
\.
COPY cs (v) FROM STDIN;
f
\.
SELECT * FROM cs ORDER BY id;
-- COPY inside transactions
BEGIN;
COPY c (id, name) FROM STDIN;
20	twenty
21	twenty-one
\.
UPDATE c SET amount = id * 10 WHERE id >= 20;
COPY (SELECT id, name, amount FROM c WHERE id >= 20 ORDER BY id) TO STDOUT;
ROLLBACK;
BEGIN;
COPY c (id, name) FROM STDIN;
22	twenty-two
\.
SAVEPOINT s;
COPY c (id, name) FROM STDIN;
22	again
\.
ROLLBACK TO s;
COPY c (id, name) FROM STDIN;
23	twenty-three
\.
COMMIT;
SELECT id, name FROM c WHERE id >= 20 ORDER BY id;
-- COPY that fails before it starts (psql then skips the data up to \.)
COPY c FROM '/nonexistent/pgquorum/file.txt';
COPY nosuch FROM STDIN;
1	x
\.
COPY c (nosuchcol) FROM STDIN;
1
\.
COPY c FROM STDIN WITH (FORMAT nosuchformat);
\.
COPY c TO STDOUT WITH (FORMAT csv, HEADER maybe);
-- \copy goes through COPY ... STDOUT/STDIN too
\copy (SELECT id, name FROM c ORDER BY id) TO STDOUT
\copy c (id, name) FROM STDIN
30	thirty
31	thirty-one
\.
SELECT count(*), sum(id) FROM c;
-- bulk: 500 inline rows in, aggregates and a sample out
CREATE TABLE big (a int, b text);
COPY big FROM STDIN;
1	b
2	cc
3	ddd
4	eeee
5	fffff
6	gggggg
7	hhhhhhh
8	iiiiiiii
9	jjjjjjjjj
10	kkkkkkkkkk
11	lllllllllll
12	mmmmmmmmmmmm
13	nnnnnnnnnnnnn
14	oooooooooooooo
15	ppppppppppppppp
16	qqqqqqqqqqqqqqqq
17	rrrrrrrrrrrrrrrrr
18	ssssssssssssssssss
19	ttttttttttttttttttt
20	uuuuuuuuuuuuuuuuuuuu
21	vvvvvvvvvvvvvvvvvvvvv
22	wwwwwwwwwwwwwwwwwwwwww
23	xxxxxxxxxxxxxxxxxxxxxxx
24	yyyyyyyyyyyyyyyyyyyyyyyy
25	zzzzzzzzzzzzzzzzzzzzzzzzz
26	aaaaaaaaaaaaaaaaaaaaaaaaaa
27	bbbbbbbbbbbbbbbbbbbbbbbbbbb
28	cccccccccccccccccccccccccccc
29	ddddddddddddddddddddddddddddd
30	eeeeeeeeeeeeeeeeeeeeeeeeeeeeee
31	fffffffffffffffffffffffffffffff
32	gggggggggggggggggggggggggggggggg
33	hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh
34	iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii
35	jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj
36	kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
37	lllllllllllllllllllllllllllllllllllll
38	mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm
39	nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn
40	
41	p
42	qq
43	rrr
44	ssss
45	ttttt
46	uuuuuu
47	vvvvvvv
48	wwwwwwww
49	xxxxxxxxx
50	yyyyyyyyyy
51	zzzzzzzzzzz
52	aaaaaaaaaaaa
53	bbbbbbbbbbbbb
54	cccccccccccccc
55	ddddddddddddddd
56	eeeeeeeeeeeeeeee
57	fffffffffffffffff
58	gggggggggggggggggg
59	hhhhhhhhhhhhhhhhhhh
60	iiiiiiiiiiiiiiiiiiii
61	jjjjjjjjjjjjjjjjjjjjj
62	kkkkkkkkkkkkkkkkkkkkkk
63	lllllllllllllllllllllll
64	mmmmmmmmmmmmmmmmmmmmmmmm
65	nnnnnnnnnnnnnnnnnnnnnnnnn
66	oooooooooooooooooooooooooo
67	ppppppppppppppppppppppppppp
68	qqqqqqqqqqqqqqqqqqqqqqqqqqqq
69	rrrrrrrrrrrrrrrrrrrrrrrrrrrrr
70	ssssssssssssssssssssssssssssss
71	ttttttttttttttttttttttttttttttt
72	uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu
73	vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv
74	wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww
75	xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
76	yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
77	zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
78	aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
79	bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
80	
81	d
82	ee
83	fff
84	gggg
85	hhhhh
86	iiiiii
87	jjjjjjj
88	kkkkkkkk
89	lllllllll
90	mmmmmmmmmm
91	nnnnnnnnnnn
92	oooooooooooo
93	ppppppppppppp
94	qqqqqqqqqqqqqq
95	rrrrrrrrrrrrrrr
96	ssssssssssssssss
97	ttttttttttttttttt
98	uuuuuuuuuuuuuuuuuu
99	vvvvvvvvvvvvvvvvvvv
100	wwwwwwwwwwwwwwwwwwww
101	xxxxxxxxxxxxxxxxxxxxx
102	yyyyyyyyyyyyyyyyyyyyyy
103	zzzzzzzzzzzzzzzzzzzzzzz
104	aaaaaaaaaaaaaaaaaaaaaaaa
105	bbbbbbbbbbbbbbbbbbbbbbbbb
106	cccccccccccccccccccccccccc
107	ddddddddddddddddddddddddddd
108	eeeeeeeeeeeeeeeeeeeeeeeeeeee
109	fffffffffffffffffffffffffffff
110	gggggggggggggggggggggggggggggg
111	hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh
112	iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii
113	jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj
114	kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
115	lllllllllllllllllllllllllllllllllll
116	mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm
117	nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn
118	oooooooooooooooooooooooooooooooooooooo
119	ppppppppppppppppppppppppppppppppppppppp
120	
121	r
122	ss
123	ttt
124	uuuu
125	vvvvv
126	wwwwww
127	xxxxxxx
128	yyyyyyyy
129	zzzzzzzzz
130	aaaaaaaaaa
131	bbbbbbbbbbb
132	cccccccccccc
133	ddddddddddddd
134	eeeeeeeeeeeeee
135	fffffffffffffff
136	gggggggggggggggg
137	hhhhhhhhhhhhhhhhh
138	iiiiiiiiiiiiiiiiii
139	jjjjjjjjjjjjjjjjjjj
140	kkkkkkkkkkkkkkkkkkkk
141	lllllllllllllllllllll
142	mmmmmmmmmmmmmmmmmmmmmm
143	nnnnnnnnnnnnnnnnnnnnnnn
144	oooooooooooooooooooooooo
145	ppppppppppppppppppppppppp
146	qqqqqqqqqqqqqqqqqqqqqqqqqq
147	rrrrrrrrrrrrrrrrrrrrrrrrrrr
148	ssssssssssssssssssssssssssss
149	ttttttttttttttttttttttttttttt
150	uuuuuuuuuuuuuuuuuuuuuuuuuuuuuu
151	vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv
152	wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww
153	xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
154	yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
155	zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
156	aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
157	bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
158	cccccccccccccccccccccccccccccccccccccc
159	ddddddddddddddddddddddddddddddddddddddd
160	
161	f
162	gg
163	hhh
164	iiii
165	jjjjj
166	kkkkkk
167	lllllll
168	mmmmmmmm
169	nnnnnnnnn
170	oooooooooo
171	ppppppppppp
172	qqqqqqqqqqqq
173	rrrrrrrrrrrrr
174	ssssssssssssss
175	ttttttttttttttt
176	uuuuuuuuuuuuuuuu
177	vvvvvvvvvvvvvvvvv
178	wwwwwwwwwwwwwwwwww
179	xxxxxxxxxxxxxxxxxxx
180	yyyyyyyyyyyyyyyyyyyy
181	zzzzzzzzzzzzzzzzzzzzz
182	aaaaaaaaaaaaaaaaaaaaaa
183	bbbbbbbbbbbbbbbbbbbbbbb
184	cccccccccccccccccccccccc
185	ddddddddddddddddddddddddd
186	eeeeeeeeeeeeeeeeeeeeeeeeee
187	fffffffffffffffffffffffffff
188	gggggggggggggggggggggggggggg
189	hhhhhhhhhhhhhhhhhhhhhhhhhhhhh
190	iiiiiiiiiiiiiiiiiiiiiiiiiiiiii
191	jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj
192	kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
193	lllllllllllllllllllllllllllllllll
194	mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm
195	nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn
196	oooooooooooooooooooooooooooooooooooo
197	ppppppppppppppppppppppppppppppppppppp
198	qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
199	rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr
200	
201	t
202	uu
203	vvv
204	wwww
205	xxxxx
206	yyyyyy
207	zzzzzzz
208	aaaaaaaa
209	bbbbbbbbb
210	cccccccccc
211	ddddddddddd
212	eeeeeeeeeeee
213	fffffffffffff
214	gggggggggggggg
215	hhhhhhhhhhhhhhh
216	iiiiiiiiiiiiiiii
217	jjjjjjjjjjjjjjjjj
218	kkkkkkkkkkkkkkkkkk
219	lllllllllllllllllll
220	mmmmmmmmmmmmmmmmmmmm
221	nnnnnnnnnnnnnnnnnnnnn
222	oooooooooooooooooooooo
223	ppppppppppppppppppppppp
224	qqqqqqqqqqqqqqqqqqqqqqqq
225	rrrrrrrrrrrrrrrrrrrrrrrrr
226	ssssssssssssssssssssssssss
227	ttttttttttttttttttttttttttt
228	uuuuuuuuuuuuuuuuuuuuuuuuuuuu
229	vvvvvvvvvvvvvvvvvvvvvvvvvvvvv
230	wwwwwwwwwwwwwwwwwwwwwwwwwwwwww
231	xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
232	yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
233	zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
234	aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
235	bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
236	cccccccccccccccccccccccccccccccccccc
237	ddddddddddddddddddddddddddddddddddddd
238	eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee
239	fffffffffffffffffffffffffffffffffffffff
240	
241	h
242	ii
243	jjj
244	kkkk
245	lllll
246	mmmmmm
247	nnnnnnn
248	oooooooo
249	ppppppppp
250	qqqqqqqqqq
251	rrrrrrrrrrr
252	ssssssssssss
253	ttttttttttttt
254	uuuuuuuuuuuuuu
255	vvvvvvvvvvvvvvv
256	wwwwwwwwwwwwwwww
257	xxxxxxxxxxxxxxxxx
258	yyyyyyyyyyyyyyyyyy
259	zzzzzzzzzzzzzzzzzzz
260	aaaaaaaaaaaaaaaaaaaa
261	bbbbbbbbbbbbbbbbbbbbb
262	cccccccccccccccccccccc
263	ddddddddddddddddddddddd
264	eeeeeeeeeeeeeeeeeeeeeeee
265	fffffffffffffffffffffffff
266	gggggggggggggggggggggggggg
267	hhhhhhhhhhhhhhhhhhhhhhhhhhh
268	iiiiiiiiiiiiiiiiiiiiiiiiiiii
269	jjjjjjjjjjjjjjjjjjjjjjjjjjjjj
270	kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
271	lllllllllllllllllllllllllllllll
272	mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm
273	nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn
274	oooooooooooooooooooooooooooooooooo
275	ppppppppppppppppppppppppppppppppppp
276	qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
277	rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr
278	ssssssssssssssssssssssssssssssssssssss
279	ttttttttttttttttttttttttttttttttttttttt
280	
281	v
282	ww
283	xxx
284	yyyy
285	zzzzz
286	aaaaaa
287	bbbbbbb
288	cccccccc
289	ddddddddd
290	eeeeeeeeee
291	fffffffffff
292	gggggggggggg
293	hhhhhhhhhhhhh
294	iiiiiiiiiiiiii
295	jjjjjjjjjjjjjjj
296	kkkkkkkkkkkkkkkk
297	lllllllllllllllll
298	mmmmmmmmmmmmmmmmmm
299	nnnnnnnnnnnnnnnnnnn
300	oooooooooooooooooooo
301	ppppppppppppppppppppp
302	qqqqqqqqqqqqqqqqqqqqqq
303	rrrrrrrrrrrrrrrrrrrrrrr
304	ssssssssssssssssssssssss
305	ttttttttttttttttttttttttt
306	uuuuuuuuuuuuuuuuuuuuuuuuuu
307	vvvvvvvvvvvvvvvvvvvvvvvvvvv
308	wwwwwwwwwwwwwwwwwwwwwwwwwwww
309	xxxxxxxxxxxxxxxxxxxxxxxxxxxxx
310	yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
311	zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
312	aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
313	bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
314	cccccccccccccccccccccccccccccccccc
315	ddddddddddddddddddddddddddddddddddd
316	eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee
317	fffffffffffffffffffffffffffffffffffff
318	gggggggggggggggggggggggggggggggggggggg
319	hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh
320	
321	j
322	kk
323	lll
324	mmmm
325	nnnnn
326	oooooo
327	ppppppp
328	qqqqqqqq
329	rrrrrrrrr
330	ssssssssss
331	ttttttttttt
332	uuuuuuuuuuuu
333	vvvvvvvvvvvvv
334	wwwwwwwwwwwwww
335	xxxxxxxxxxxxxxx
336	yyyyyyyyyyyyyyyy
337	zzzzzzzzzzzzzzzzz
338	aaaaaaaaaaaaaaaaaa
339	bbbbbbbbbbbbbbbbbbb
340	cccccccccccccccccccc
341	ddddddddddddddddddddd
342	eeeeeeeeeeeeeeeeeeeeee
343	fffffffffffffffffffffff
344	gggggggggggggggggggggggg
345	hhhhhhhhhhhhhhhhhhhhhhhhh
346	iiiiiiiiiiiiiiiiiiiiiiiiii
347	jjjjjjjjjjjjjjjjjjjjjjjjjjj
348	kkkkkkkkkkkkkkkkkkkkkkkkkkkk
349	lllllllllllllllllllllllllllll
350	mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm
351	nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn
352	oooooooooooooooooooooooooooooooo
353	ppppppppppppppppppppppppppppppppp
354	qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
355	rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr
356	ssssssssssssssssssssssssssssssssssss
357	ttttttttttttttttttttttttttttttttttttt
358	uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu
359	vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv
360	
361	x
362	yy
363	zzz
364	aaaa
365	bbbbb
366	cccccc
367	ddddddd
368	eeeeeeee
369	fffffffff
370	gggggggggg
371	hhhhhhhhhhh
372	iiiiiiiiiiii
373	jjjjjjjjjjjjj
374	kkkkkkkkkkkkkk
375	lllllllllllllll
376	mmmmmmmmmmmmmmmm
377	nnnnnnnnnnnnnnnnn
378	oooooooooooooooooo
379	ppppppppppppppppppp
380	qqqqqqqqqqqqqqqqqqqq
381	rrrrrrrrrrrrrrrrrrrrr
382	ssssssssssssssssssssss
383	ttttttttttttttttttttttt
384	uuuuuuuuuuuuuuuuuuuuuuuu
385	vvvvvvvvvvvvvvvvvvvvvvvvv
386	wwwwwwwwwwwwwwwwwwwwwwwwww
387	xxxxxxxxxxxxxxxxxxxxxxxxxxx
388	yyyyyyyyyyyyyyyyyyyyyyyyyyyy
389	zzzzzzzzzzzzzzzzzzzzzzzzzzzzz
390	aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
391	bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
392	cccccccccccccccccccccccccccccccc
393	ddddddddddddddddddddddddddddddddd
394	eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee
395	fffffffffffffffffffffffffffffffffff
396	gggggggggggggggggggggggggggggggggggg
397	hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh
398	iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii
399	jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj
400	
401	l
402	mm
403	nnn
404	oooo
405	ppppp
406	qqqqqq
407	rrrrrrr
408	ssssssss
409	ttttttttt
410	uuuuuuuuuu
411	vvvvvvvvvvv
412	wwwwwwwwwwww
413	xxxxxxxxxxxxx
414	yyyyyyyyyyyyyy
415	zzzzzzzzzzzzzzz
416	aaaaaaaaaaaaaaaa
417	bbbbbbbbbbbbbbbbb
418	cccccccccccccccccc
419	ddddddddddddddddddd
420	eeeeeeeeeeeeeeeeeeee
421	fffffffffffffffffffff
422	gggggggggggggggggggggg
423	hhhhhhhhhhhhhhhhhhhhhhh
424	iiiiiiiiiiiiiiiiiiiiiiii
425	jjjjjjjjjjjjjjjjjjjjjjjjj
426	kkkkkkkkkkkkkkkkkkkkkkkkkk
427	lllllllllllllllllllllllllll
428	mmmmmmmmmmmmmmmmmmmmmmmmmmmm
429	nnnnnnnnnnnnnnnnnnnnnnnnnnnnn
430	oooooooooooooooooooooooooooooo
431	ppppppppppppppppppppppppppppppp
432	qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
433	rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr
434	ssssssssssssssssssssssssssssssssss
435	ttttttttttttttttttttttttttttttttttt
436	uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu
437	vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv
438	wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww
439	xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
440	
441	z
442	aa
443	bbb
444	cccc
445	ddddd
446	eeeeee
447	fffffff
448	gggggggg
449	hhhhhhhhh
450	iiiiiiiiii
451	jjjjjjjjjjj
452	kkkkkkkkkkkk
453	lllllllllllll
454	mmmmmmmmmmmmmm
455	nnnnnnnnnnnnnnn
456	oooooooooooooooo
457	ppppppppppppppppp
458	qqqqqqqqqqqqqqqqqq
459	rrrrrrrrrrrrrrrrrrr
460	ssssssssssssssssssss
461	ttttttttttttttttttttt
462	uuuuuuuuuuuuuuuuuuuuuu
463	vvvvvvvvvvvvvvvvvvvvvvv
464	wwwwwwwwwwwwwwwwwwwwwwww
465	xxxxxxxxxxxxxxxxxxxxxxxxx
466	yyyyyyyyyyyyyyyyyyyyyyyyyy
467	zzzzzzzzzzzzzzzzzzzzzzzzzzz
468	aaaaaaaaaaaaaaaaaaaaaaaaaaaa
469	bbbbbbbbbbbbbbbbbbbbbbbbbbbbb
470	cccccccccccccccccccccccccccccc
471	ddddddddddddddddddddddddddddddd
472	eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee
473	fffffffffffffffffffffffffffffffff
474	gggggggggggggggggggggggggggggggggg
475	hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh
476	iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii
477	jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj
478	kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
479	lllllllllllllllllllllllllllllllllllllll
480	
481	n
482	oo
483	ppp
484	qqqq
485	rrrrr
486	ssssss
487	ttttttt
488	uuuuuuuu
489	vvvvvvvvv
490	wwwwwwwwww
491	xxxxxxxxxxx
492	yyyyyyyyyyyy
493	zzzzzzzzzzzzz
494	aaaaaaaaaaaaaa
495	bbbbbbbbbbbbbbb
496	cccccccccccccccc
497	ddddddddddddddddd
498	eeeeeeeeeeeeeeeeee
499	fffffffffffffffffff
500	gggggggggggggggggggg
\.
COPY (SELECT count(*), sum(a), md5(string_agg(b, ',' ORDER BY a)) FROM big) TO STDOUT;
COPY (SELECT * FROM big WHERE a % 100 = 0 ORDER BY a) TO STDOUT WITH (FORMAT csv);
TRUNCATE big;
INSERT INTO big SELECT g, repeat(chr(97 + g % 26), g % 50) FROM generate_series(1, 3000) g ORDER BY g;
COPY (SELECT count(*), sum(a), md5(string_agg(b, ',' ORDER BY a)) FROM big) TO STDOUT;
