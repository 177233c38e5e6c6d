package trace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
)

// nasty are values a dump's strings hold that a cut at the wrong place
// would break on: the statement's end, a row's, quotes of each kind,
// newlines, backslashes, SQL words.
var nasty = []string{
	"Lena Morgan",
	"it's; (1,'x'),(2,'y');\nINSERT INTO users VALUES (9,'z');",
	`C:\temp\ back\slash \' \\' ''`,
	"),(\n\t(",
	"-- not a comment /* nor this */ # nor this",
	"tab\tand \\N and \\. and\n\\.\nend",
	"",
}

var mysqlEscapes = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\x00", `\0`, "\"", `\"`)

// sqlEscape writes v as a string literal of dialect d: "mysql" (backslash
// escapes, as mysqldump writes), else standard SQL (quotes doubled).
func sqlEscape(v, d string) string {
	if d == "mysql" {
		return "'" + mysqlEscapes.Replace(v) + "'"
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

var copyEscapes = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// copyEscape writes v as a value of pg_dump's COPY text format.
func copyEscape(v string) string {
	return copyEscapes.Replace(v)
}

// person is a row of the users table: id, username, full name (one of
// nasty), e-mail, phone (empty: NULL).
type person struct{ id, username, name, email, phone string }

// dumpOf writes users (and, when follows holds pairs, a follows table of
// follower and followee ids) as the tool named writes a dump:
// mysqldump (extended INSERTs of rows rows each, no column list),
// mysqldump-complete (--complete-insert), pg_dump (COPY), pg_dump-inserts
// (--inserts, one row a statement, no column list), pg_dump-column-inserts,
// sqlite (.dump).
func dumpOf(tool string, users []person, follows [][2]int, rows int) string {
	var b strings.Builder
	d := "std"
	if strings.HasPrefix(tool, "mysqldump") {
		d = "mysql"
	}
	val := func(v string) string {
		if v == "" {
			return "NULL"
		}
		return sqlEscape(v, d)
	}
	tuple := func(p person) string {
		return fmt.Sprintf("(%s,%s,%s,%s,%s)", p.id, val(p.username), val(p.name), val(p.email), val(p.phone))
	}
	switch tool {
	case "mysqldump", "mysqldump-complete":
		b.WriteString("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: social\n" +
			"-- ------------------------------------------------------\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n" +
			"/*!40101 SET NAMES utf8mb4 */;\n\n--\n-- Table structure for table `users`\n--\n\nDROP TABLE IF EXISTS `users`;\n" +
			"CREATE TABLE `users` (\n  `id` bigint NOT NULL,\n  `username` varchar(64) NOT NULL,\n  `full_name` varchar(255) DEFAULT 'it''s (a), b;',\n" +
			"  `email` varchar(255) DEFAULT NULL,\n  `phone` varchar(32) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `username` (`username`)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\n--\n-- Dumping data for table `users`\n--\n\nLOCK TABLES `users` WRITE;\n" +
			"/*!40000 ALTER TABLE `users` DISABLE KEYS */;\n")
		head := "INSERT INTO `users` VALUES "
		if tool == "mysqldump-complete" {
			head = "INSERT INTO `users` (`id`, `username`, `full_name`, `email`, `phone`) VALUES "
		}
		for i := 0; i < len(users); i += rows {
			b.WriteString(head)
			for j, p := range users[i:min(i+rows, len(users))] {
				if j > 0 {
					b.WriteString(",")
				}
				b.WriteString(tuple(p))
			}
			b.WriteString(";\n")
		}
		b.WriteString("/*!40000 ALTER TABLE `users` ENABLE KEYS */;\nUNLOCK TABLES;\n")
		if follows != nil {
			b.WriteString("DROP TABLE IF EXISTS `follows`;\nCREATE TABLE `follows` (\n  `follower_id` bigint NOT NULL,\n  `followee_id` bigint NOT NULL,\n" +
				"  KEY `f` (`followee_id`)\n) ENGINE=InnoDB;\nLOCK TABLES `follows` WRITE;\n")
			for i := 0; i < len(follows); i += rows {
				b.WriteString("INSERT INTO `follows` VALUES ")
				for j, f := range follows[i:min(i+rows, len(follows))] {
					if j > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, "(%d,%d)", f[0], f[1])
				}
				b.WriteString(";\n")
			}
			b.WriteString("UNLOCK TABLES;\n")
		}
		b.WriteString("/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n-- Dump completed on 2026-12-07 22:00:00\n")
	case "pg_dump", "pg_dump-inserts", "pg_dump-column-inserts":
		b.WriteString("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n" +
			"SELECT pg_catalog.set_config('search_path', '', false);\n\n" +
			"CREATE FUNCTION public.touch() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n  INSERT INTO public.audit VALUES (NEW.id, 'it''s');\n  RETURN NEW;\nEND;\n$$;\n\n" +
			"CREATE TABLE public.users (\n    id bigint NOT NULL,\n    username text NOT NULL,\n    full_name text,\n    email text,\n    phone text,\n" +
			"    CONSTRAINT users_pk PRIMARY KEY (id)\n);\n\nALTER TABLE public.users OWNER TO postgres;\n\n")
		if follows != nil {
			b.WriteString("CREATE TABLE public.follows (\n    follower_id bigint NOT NULL,\n    followee_id bigint NOT NULL\n);\n\n")
		}
		switch tool {
		case "pg_dump":
			b.WriteString("--\n-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY public.users (id, username, full_name, email, phone) FROM stdin;\n")
			for _, p := range users {
				cv := func(v string) string {
					if v == "" {
						return `\N`
					}
					return copyEscape(v)
				}
				fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\n", p.id, cv(p.username), cv(p.name), cv(p.email), cv(p.phone))
			}
			b.WriteString("\\.\n\n\n")
			if follows != nil {
				b.WriteString("COPY public.follows (follower_id, followee_id) FROM stdin;\n")
				for _, f := range follows {
					fmt.Fprintf(&b, "%d\t%d\n", f[0], f[1])
				}
				b.WriteString("\\.\n\n\n")
			}
		default:
			head := "INSERT INTO public.users VALUES "
			if tool == "pg_dump-column-inserts" {
				head = "INSERT INTO public.users (id, username, full_name, email, phone) VALUES "
			}
			for _, p := range users {
				b.WriteString(head + strings.ReplaceAll(tuple(p), ",", ", ") + ";\n")
			}
			for _, f := range follows {
				fmt.Fprintf(&b, "INSERT INTO public.follows VALUES (%d, %d);\n", f[0], f[1])
			}
		}
		b.WriteString("\nALTER TABLE ONLY public.users\n    ADD CONSTRAINT users_username_key UNIQUE (username);\n\n--\n-- PostgreSQL database dump complete\n--\n\n")
	case "sqlite":
		b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT UNIQUE, full_name TEXT, email TEXT, phone TEXT);\n")
		for _, p := range users {
			b.WriteString(`INSERT INTO "users" VALUES` + tuple(p) + ";\n")
		}
		if follows != nil {
			b.WriteString("CREATE TABLE follows(follower_id INTEGER, followee_id INTEGER);\n")
			for _, f := range follows {
				fmt.Fprintf(&b, "INSERT INTO follows VALUES(%d,%d);\n", f[0], f[1])
			}
		}
		b.WriteString("CREATE INDEX f ON follows(followee_id);\nCOMMIT;\n")
	}
	return b.String()
}

var sqlTools = []string{"mysqldump", "mysqldump-complete", "pg_dump", "pg_dump-inserts", "pg_dump-column-inserts", "sqlite"}

// peopleRows are the test copy's people as rows of a users table, each
// with one of the nasty names.
func peopleRows() []person {
	var us []person
	for i, p := range people {
		us = append(us, person{p[0], p[1], nasty[(i+1)%len(nasty)], p[2], p[3]})
	}
	return us
}

func readSQL(t testing.TB, in string, workers, size int) ([]string, ReadStats) {
	var mu sync.Mutex
	var got []string
	st, err := read(strings.NewReader(in), workers, size, func(_ int, r *Record) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", r.ID, r.Username, r.Email, r.Phone))
		mu.Unlock()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return got, st
}

// TestSQLDumps: each tool's dump of the users reads as their records, as
// the CSV of them does, with format "sql"; a follows table beside it is
// read too (each row a record of its first id column, as its CSV's).
func TestSQLDumps(t *testing.T) {
	var want []string
	for _, p := range people {
		want = append(want, strings.Join(p[:], "|"))
	}
	sort.Strings(want)
	follows := [][2]int{{17, 42}, {3000000001, 17}}
	for _, tool := range sqlTools {
		got, st := readSQL(t, dumpOf(tool, peopleRows(), nil, 2), 2, chunkSize)
		if fmt.Sprint(got) != fmt.Sprint(want) || st.Format != FormatSQL || st.Malformed != 0 {
			t.Errorf("%s: format %s, %d malformed\ngot  %q\nwant %q", tool, st.Format, st.Malformed, got, want)
		}
		got, _ = readSQL(t, dumpOf(tool, peopleRows(), follows, 2), 2, chunkSize)
		wantAll := append([]string{"17|||", "3000000001|||"}, want...)
		sort.Strings(wantAll)
		if fmt.Sprint(got) != fmt.Sprint(wantAll) {
			t.Errorf("%s with follows:\ngot  %q\nwant %q", tool, got, wantAll)
		}
	}
}

// TestSQLValues: a value is read as the database held it: escapes undone
// in each dialect, NULL absent, introducers and expressions passed over.
func TestSQLValues(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"mysql escapes", "-- MySQL dump\nINSERT INTO `u` (`id`,`username`) VALUES (1,'o\\'brien\\\\'),(2,'a''b');\n", "1|o'brien\\|| 2|a'b||"},
		{"standard: a backslash is a byte", "INSERT INTO u (id, username) VALUES (1, 'c:\\'), (2, 'x');\n", "1|c:\\|| 2|x||"},
		{"NULL, null, numbers", "INSERT INTO u (id, username, email) VALUES (-1, NULL, 'a@b.example'), (2, null, NULL);\n", "-1||a@b.example| 2|||"},
		{"introducer, hex, expression", "-- MySQL dump\nINSERT INTO `u` (`id`,`bio`,`username`,`x`) VALUES (1,_binary 'ab\\'c',_utf8mb4'n_1',X'00ff'),(2,replace('a\\nb','\\n',char(10)),'n_2',CAST(1 AS CHAR));\n", "1|n_1|| 2|n_2||"},
		{"a cast after a value, ON CONFLICT", "INSERT INTO u (id, username) VALUES (1, 'n_1'::text) ON CONFLICT (id) DO NOTHING;\nINSERT INTO u (id, username) VALUES (2, 'n_2');\n", "1|n_1|| 2|n_2||"},
		{"COPY escapes and NULL", "COPY u (id, username, email) FROM stdin;\n1\ta\\\\b\t\\N\n2\tc\\td\tx@y.example\n\\.\n", "1|a\\b|| 2|c\td|x@y.example|"},
		{"BOM, CRLF, REPLACE, INSERT IGNORE", "\xef\xbb\xbfREPLACE INTO u (id, username) VALUES (1,'a');\r\nINSERT IGNORE INTO u (id, username) VALUES (2,'b');\r\n", "1|a|| 2|b||"},
		{"pg identity: OVERRIDING SYSTEM VALUE", "INSERT INTO public.u (id, username) OVERRIDING SYSTEM VALUE VALUES (1, 'a');\n", "1|a||"},
		{"names by values (unknown column names)", "CREATE TABLE t (a INTEGER, b TEXT, c TEXT);\nINSERT INTO t VALUES(17,'lena.morgan_17','lena@mail.example');\nINSERT INTO t VALUES(18,'noah_18','noah@mail.example');\n", "17|lena.morgan_17|lena@mail.example| 18|noah_18|noah@mail.example|"},
		{"no CREATE TABLE, no column list", "INSERT INTO t VALUES (17,'lena.morgan_17','+12125123456');\n", "17|lena.morgan_17||+12125123456"},
		{"INSERT ... SELECT and a cut row are passed over", "INSERT INTO u (id, username) SELECT 1, 'a';\nINSERT INTO u (id, username) VALUES (2, 'b'), (3, 'c", "2|b||"},
		{"a row broken by the statement's end", "INSERT INTO u (id, username) VALUES (1, 'a' junk; INSERT INTO u (id, username) VALUES (2, 'b');\n", "2|b||"},
		{"an empty COPY block", "COPY public.u (id, username) FROM stdin;\n\\.\nINSERT INTO public.u (id, username) VALUES (2, 'b');\n", "2|b||"},
	} {
		got, _ := readSQL(t, c.in, 1, chunkSize)
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestSQLCuts: a dump read in chunks of every size from 40 bytes reads the
// records a read in one chunk does, on 3 workers: chunks are cut only where
// no string is open, whatever the strings hold (nasty: the statement's
// end, a row's, quotes, newlines, comments, COPY's end line).
func TestSQLCuts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var us []person
	for i := range 300 {
		us = append(us, person{fmt.Sprint(1000 + i), fmt.Sprintf("lena.morgan_%d", i), nasty[rng.IntN(len(nasty))] + nasty[rng.IntN(len(nasty))],
			fmt.Sprintf("lena%d@mail.example", i), fmt.Sprintf("+4915123%06d", i)})
	}
	var follows [][2]int
	for i := range 100 {
		follows = append(follows, [2]int{1000 + i, 1000 + (i*7)%300})
	}
	for _, tool := range sqlTools {
		for _, rows := range []int{1, 7, 1000} {
			in := dumpOf(tool, us, follows, rows)
			whole, st := readSQL(t, in, 1, 1<<22) // the dump in one chunk
			if len(whole) != len(us)+len(follows) || st.Malformed != 0 {
				t.Fatalf("%s (%d rows a statement): %d records of %d, %d malformed", tool, rows, len(whole), len(us)+len(follows), st.Malformed)
			}
			for _, size := range []int{40, 97, 256, 1000, 4096} {
				got, st := readSQL(t, in, 3, size)
				if fmt.Sprint(got) != fmt.Sprint(whole) || st.Malformed != 0 {
					t.Fatalf("%s (%d rows a statement) in chunks of %d: %d records, %d malformed, not the %d of one chunk", tool, rows, size, len(got), st.Malformed, len(whole))
				}
			}
		}
	}
}

// TestSQLBig: a dump of several chunks, one INSERT of them all (a tool that
// writes a table as one statement) read in pieces on every core.
func TestSQLBig(t *testing.T) {
	var us []person
	for i := 0; len(us)*120 < 3*chunkSize; i++ {
		us = append(us, person{fmt.Sprint(i + 1), fmt.Sprintf("u_%d", i), strings.Repeat("x", 40) + nasty[i%len(nasty)], "", ""})
	}
	for _, tool := range []string{"mysqldump", "pg_dump", "pg_dump-inserts"} {
		got, _ := readSQL(t, dumpOf(tool, us, nil, len(us)), 3, chunkSize)
		if len(got) != len(us) {
			t.Errorf("%s: %d records of %d", tool, len(got), len(us))
		}
	}
}

// TestSQLDumpDetected: what reads as a dump and what does not; pg_dump's
// archives (custom, tar) are refused with the command printing them as SQL.
func TestSQLDumpDetected(t *testing.T) {
	for name, in := range map[string]string{
		"mysqldump":     dumpOf("mysqldump", peopleRows(), nil, 10),
		"a column list": "CREATE TABLE users (id bigint, username text);\nINSERT INTO `users` (`id`,`username`) VALUES (161,'a_1'),(288,'b_2');\n",
		"lower case":    "insert into users values (161, 'a_1');\n",
		"pg_dump COPY":  "--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\nCOPY public.users (id, username) FROM stdin;\n161\ta_1\n\\.\n",
		// pg_dump writes the schema first: no row within the sample.
		"a schema of 80 KB first": "SET statement_timeout = 0;\n" + strings.Repeat("CREATE TABLE public.t (\n    a bigint,\n    b text\n);\n\n", 2000) +
			"COPY public.users (id, username) FROM stdin;\n161\ta_1\n\\.\n",
	} {
		_, st := readSQL(t, in, 2, chunkSize)
		if st.Format != FormatSQL {
			t.Errorf("%s: read as %s", name, st.Format)
		}
	}
	csv := "id,username,note\n161,a_1,INSERT INTO x\n288,b_2,SET y\n"
	if got, st := readSQL(t, csv, 1, chunkSize); len(got) != 2 || st.Format != FormatCSV {
		t.Errorf("a CSV with SQL words: %q as %s", got, st.Format)
	}
	tar := make([]byte, 1024)
	copy(tar, "toc.dat")
	copy(tar[257:], "ustar\x0000")
	for name, in := range map[string][]byte{
		"custom": append([]byte("PGDMP\x01\x0e\x00\x04\x08\x01\x01"), make([]byte, 100)...),
		"tar":    tar,
	} {
		_, err := Read(bytes.NewReader(in), 2, func(int, *Record) {}, nil)
		if err == nil || !strings.Contains(err.Error(), "pg_dump archive ("+name) || !strings.Contains(err.Error(), "pg_restore -f - FILE | warden trace -") {
			t.Errorf("%s archive: err %v", name, err)
		}
	}
}
