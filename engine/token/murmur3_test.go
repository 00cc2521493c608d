package token

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// publishedVectors are (key, token) pairs published by projects that took
// them from real Cassandra clusters or from Cassandra's own code. The source
// of each group is named above it. Keys are the serialized partition key
// bytes (CQL int = 4 bytes big-endian, bigint = 8, text = UTF-8, uuid = 16).
var publishedVectors = []struct {
	key  string
	want Token
}{
	// apache/cassandra-dtest, replication_test.py, murmur3_hashes: CQL int
	// keys 1..20, used against a live cluster to predict replicas.
	{"\x00\x00\x00\x01", -4069959284402364209},
	{"\x00\x00\x00\x02", -3248873570005575792},
	{"\x00\x00\x00\x03", 9010454139840013625},
	{"\x00\x00\x00\x04", -2729420104000364805},
	{"\x00\x00\x00\x05", -7509452495886106294},
	{"\x00\x00\x00\x06", 2705480034054113608},
	{"\x00\x00\x00\x07", 1634052884888577606},
	{"\x00\x00\x00\x08", -3799847372828181882},
	{"\x00\x00\x00\x09", 3728482343045213994},
	{"\x00\x00\x00\x0a", -6715243485458697746},
	{"\x00\x00\x00\x0b", -4156302194539278891},
	{"\x00\x00\x00\x0c", 8582886034424406875},
	{"\x00\x00\x00\x0d", -5034495173465742853},
	{"\x00\x00\x00\x0e", 4279681877540623768},
	{"\x00\x00\x00\x0f", -1191135763843456182},
	{"\x00\x00\x00\x10", -5477287129830487822},
	{"\x00\x00\x00\x11", 5467144456125416399},
	{"\x00\x00\x00\x12", -2695747960476065067},
	{"\x00\x00\x00\x13", -3974532302236993209},
	{"\x00\x00\x00\x14", 1388667306199997068},

	// datastax/csharp-driver, src/Cassandra.Tests/TokenTests.cs,
	// Murmur_Hash_Test ("inputs and result values from Cassandra"); the same
	// table is in datastax/nodejs-driver test/unit/tokenizer-tests.js and
	// datastax/ruby-driver spec/cassandra/murmur3_spec.rb.
	{"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", -5563837382979743776},
	{"\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11", -1513403162740402161},
	{"\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12", -495360443712684655},
	{"\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13", 1734091135765407943},
	{"\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14", -3199412112042527988},
	{"\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15", -6316563938475080831},
	{"\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16", 8228893370679682632},
	{"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 5457549051747178710},
	{"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", -2824192546314762522},
	{"\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe", -833317529301936754},
	{"\x00\x01\x02\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 6463632673159404390},
	{"\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe", -1672437813826982685},
	{"\xfe\xfe\xfe\xfe", 4566408979886474012},
	{"\x00\x00\x00\x00", -3485513579396041028},
	{"\x00\x01\x7f\x7f", 6573459401642635627},
	{"\x00\xff\xff\xff", 123573637386978882},
	{"\xff\x01\x02\x03", -2839127690952877842},
	{"\xe2\xe7", -8582699461035929883},
	{"\xe2\xe7\xe2\xe7\xe2\xe7\x01", 2222373981930033306},

	// datastax/nodejs-driver, test/unit/tokenizer-tests.js, Murmur3Tokenizer #hash().
	{"\x00\x00\x00\x00\x00\x00\x00\x80", 78142285821850151},

	// datastax/ruby-driver, spec/cassandra/murmur3_spec.rb, and
	// datastax/python-driver, tests/unit/test_metadata.py (_verify_hash).
	{"123", -7468325962851647638},
	{"\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99" +
		"\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99\x00\xff\x10\xfa\x99", 5837342703291459765},
	{"\xfe\xfe\xfe\xfe\xfe\xfe\xfe\xfe", -8927430733708461935},
	{"\x10\x10\x10\x10\x10\x10\x10\x10", 1446172840243228796},
	{"9223372036854775807", 7162290910810015547},

	// pmcfadin/cqlite, cqlite-core/src/util/cassandra_murmur3.rs, tests
	// "verified against a running Cassandra 5.0 instance" with
	// SELECT token(id), id.
	{"a", -8839064797231613815},
	{"ab", -7815133031266706642},
	{"abc", -5434086359492102041},
	{"abcd", -5153323217664422577},
	{"abcde", 2321271983248423864},
	{"abcdef", -1982280103179862187},
	{"abcdefg", -6427428730009885543},
	{"abcdefgh", -3708139591217214462},
	{"hello", -3758069500696749310},
	{"cassandra", 356242581507269238},
	{"murmur3", 5322121941860471994},
	{"test_key_12345", -3182120811138177122},
	{"0123456789abcde", -6472281833689111727},
	{"0123456789abcdef", 5467490433528156583},
	{"this is a longer test key for murmur3 hashing", -7889617755374116647},
	{"\xff\xff\xff\xff", 7297452126230313552},  // int -1
	{"\x00\x00\x00\x2a", -7160136740246525330}, // int 42
	{"\x00\x00\x00\x7f", 4443639997907684431},  // int 127
	{"\x00\x00\x00\x80", -9081975895656599623}, // int 128
	{"\x00\x00\x00\xff", -8423851636648339959}, // int 255
	{"\x00\x00\x01\x00", 180151580513994396},   // int 256
	{"\x00\x00\x03\xe8", 7935772098093053663},  // int 1000
	{"\xff\xff\xfc\x18", 5905661066942090405},  // int -1000
	{"\x7f\xff\xff\xff", -765994672030311617},  // int MaxInt32
	{"\x80\x00\x00\x00", -420533958509279465},  // int MinInt32

	// uuid 550e8400-e29b-41d4-a716-446655440000 and 12345678-1234-1234-1234-123456789abc
	{"\x55\x0e\x84\x00\xe2\x9b\x41\xd4\xa7\x16\x44\x66\x55\x44\x00\x00", 4277286421682315655},
	{"\x12\x34\x56\x78\x12\x34\x12\x34\x12\x34\x12\x34\x56\x78\x9a\xbc", -8497799532739775204},

	{"\x00", 5048724184180415669},
	{"\x80", -5284281814142962636},
	{"\xff", -4442228696663692417},
	{"\xff\xfe", -2002833339314343643},
	{"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89", -7623170703309721106},
	{"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 597835946752277653},

	{"\x00\x00\x00\x00\x00\x00\x00\x00", 2945182322382062539},               // bigint 0
	{"\x00\x00\x00\x00\x00\x00\x00\x01", 6292367497774912474},               // bigint 1
	{"\xff\xff\xff\xff\xff\xff\xff\xff", 7071048584287372947},               // bigint -1
	{"\x7f\xff\xff\xff\xff\xff\xff\xff", -1722304415079482439},              // bigint MaxInt64
	{"\x80\x00\x00\x00\x00\x00\x00\x00", 9204767954415360687},               // bigint MinInt64
	{"\x00\x05hello\x00\x00\x04\x00\x00\x00\x2a\x00", 7666157718303755816},  // composite ('hello', 42)
	{"\x00\x05world\x00\x00\x04\x00\x00\x00\x63\x00", -4641306270390207264}, // composite ('world', 99)

	// uuid keys 11..11, 22..22, 33..33
	{"\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11", 4360155383588533346},
	{"\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22\x22", 1213057064512856170},
	{"\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33\x33", 8780122315263850168},

	// apache/cassandra-gocql-driver, internal/murmur/murmur_test.go,
	// TestMurmur3H1ForCassandra: every tail length, tail bytes >= 0x80.
	{"prefix\x00", -5156414768376541762},
	{"prefix\x00\x01", 3700033067394128583},
	{"prefix\x00\x01\x02", -3973852022020331202},
	{"prefix\x00\x01\x02\x03", 3038655072509758878},
	{"prefix\x00\x01\x02\x03\x04", -5681686890369564299},
	{"prefix\x00\x01\x02\x03\x04\x05", 8960422816272944721},
	{"prefix\x00\x01\x02\x03\x04\x05\x06", -1104872167714568090},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07", -9199676315897541990},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08", 4847624695450664884},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t", -2737291859101550625},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n", -1154133289533387924},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b", 5781349077088505981},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c", -681021187788781932},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r", -3787130296809111096},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e", -3115393326357146996},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f", -2684252762052835206},
	{"prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\xc8", -278181328349571586},
	{gocqlPrefix2, -5319761130493488577},
	{gocqlPrefix2 + "\xca", -4593148434938707926},
	{gocqlPrefix2 + "\xca\xcb", -575713103357290760},
	{gocqlPrefix2 + "\xca\xcb\xcc", 4290743753678124926},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd", 9164754117279683406},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce", -107668053986278786},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf", 64887291506465003},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0", 6241282934480161521},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1", 5150183507841894143},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2", 5645797256444299552},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3", -908235285856554578},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4", -1785405279637408062},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5", 5343233714768265848},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5\xd6", 4936964276934412722},
	{gocqlPrefix2 + "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7", 2294903531026336836},
	{"\x00\x10C'R\x9f\xb6E\xdd\x00\xb8\x83\xec9\xaeD\x8b\xb8\x00\x00\x04\x00\x06jk\x00", -9223371632693506265},
}

const gocqlPrefix2 = "prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\xc8\xc9"

func TestMurmur3PublishedVectors(t *testing.T) {
	var p Murmur3
	for _, v := range publishedVectors {
		if got := p.Token([]byte(v.key)); got != v.want {
			t.Errorf("Token(%x) = %d, want %d", v.key, got, v.want)
		}
	}
}

// javaOracle holds tokens printed by Apache Cassandra's own Java code:
// org.apache.cassandra.utils.MurmurHash.hash3_x64_128 (the hash3 part of
// src/java/org/apache/cassandra/utils/MurmurHash.java, compiled alone with
// javac 17 in a scratch directory) followed by the two steps of
// org.apache.cassandra.dht.Murmur3Partitioner.getToken: a zero-length key
// gives MINIMUM (Long.MIN_VALUE), any other key normalize(hash[0]).
//
// Row n holds the tokens of three keys of length n:
//   - pattern: byte i is (i*37 + 0x7b) & 0xff, so most tails have bytes >= 0x80;
//   - ff: n bytes 0xff;
//   - b80: n bytes 0x80.
//
// Neither the Java code nor the driver that printed these is part of grove.
var javaOracle = []struct {
	n                int
	pattern, ff, b80 Token
}{
	{0, -9223372036854775808, -9223372036854775808, -9223372036854775808},
	{1, 424974474171884777, -4442228696663692417, -5284281814142962636},
	{2, 4441399471550925272, 6163071069786142063, 9126203624323612221},
	{3, -1222669925402914448, -9154616442117352147, -4389534605726297977},
	{4, 7364354363447399718, 7297452126230313552, 6896267178455106169},
	{5, 5106737539079918720, -8869521063059112040, -5942897619821749794},
	{6, -4918687023072472007, 2112339540026359505, 3269191392245818634},
	{7, 8922014368073819048, 4860178782003914630, 7590665628118325324},
	{8, -5232016402228626752, 7071048584287372947, -1779431913235548342},
	{9, 907897174615412946, 8434364767658694854, -8549929301482172571},
	{10, 2391161017462653852, -2285028417834605101, 4971199074875490598},
	{11, 560864260804639965, 4844839740296823970, -3383336921300642366},
	{12, -6599830388307270284, 5441275315642417349, 732398096133221117},
	{13, -1484538673570686137, 5402220310222980743, 9150937848319949855},
	{14, 7746482760475572269, -7003579699878715426, 6448128259954341647},
	{15, -1160108182422537326, -2195530867418009455, -5979218241483680930},
	{16, 5783416875260834744, -2824192546314762522, -3634615257541804556},
	{17, -1496523907266135983, -4128212798341382003, -7492040465024918340},
	{18, 6067551504989289199, -1363856092562072622, -4140239127036022647},
	{19, -7694790762169045933, 3068027875626831873, 1459887275166054984},
	{20, 7572412847902938491, 6996911144616199499, -2331765004752948948},
	{21, 3218156393949077308, -5433701066071953126, 6629349024146735406},
	{22, 4266886108268681924, 127144198915815677, 5368644607649394238},
	{23, 9198050660878870468, 1938495958014436960, -3522030315118661842},
	{24, -1640760444825211287, 3816310703998031073, -8379035891443890106},
	{25, -5663573311500882511, -8490867703346180748, 9187015392751122814},
	{26, 3819967663600827565, -6120389513095126688, 9199427042596192609},
	{27, 3846795344352505740, 1288839145492222455, -3850358070634041729},
	{28, -352963134799603034, -5282313468393769391, -7012722285150284849},
	{29, 2038287202179831436, -8275920908838677769, -3916222173001046215},
	{30, 2315447802453824704, 911528564376864884, 5346953116252798165},
	{31, 7865815034798025312, -3550403632215323560, 2158224688659817168},
	{32, -2047167099605355232, 8472088376404677617, 136917809615872897},
	{33, -8578596041656929527, -6464197807167602253, 8320964553149094587},
}

func oracleKeys(n int) (pattern, ff, b80 []byte) {
	pattern = make([]byte, n)
	ff = bytes.Repeat([]byte{0xff}, n)
	b80 = bytes.Repeat([]byte{0x80}, n)
	for i := range pattern {
		pattern[i] = byte(i*37 + 0x7b)
	}
	return pattern, ff, b80
}

func TestMurmur3JavaOracle(t *testing.T) {
	var p Murmur3
	for _, v := range javaOracle {
		pattern, ff, b80 := oracleKeys(v.n)
		for _, c := range []struct {
			name string
			key  []byte
			want Token
		}{{"pattern", pattern, v.pattern}, {"ff", ff, v.ff}, {"80", b80, v.b80}} {
			got := p.Token(c.key)
			if v.n == 0 {
				// Cassandra returns its MINIMUM sentinel for the empty key;
				// grove deliberately hashes it (raw h1 of the empty input,
				// also printed by the oracle, is 0). See the Murmur3 doc.
				if c.want != math.MinInt64 {
					t.Fatalf("oracle row 0 %s = %d, expected Cassandra's MINIMUM", c.name, c.want)
				}
				if got != 0 {
					t.Errorf("Token(empty) = %d, want 0", got)
				}
				continue
			}
			if got != c.want {
				t.Errorf("n=%d %s: Token(%x) = %d, want %d", v.n, c.name, c.key, got, c.want)
			}
		}
	}
}

// TestMurmur3Normalisation uses a 16-byte key whose raw Cassandra hash h1 is
// exactly math.MinInt64. It was built with Cassandra's own inverse,
// MurmurHash.inv_hash3_x64_128(new long[]{Long.MIN_VALUE, 0}), laid out as
// Murmur3Partitioner.LongToken.keyForToken does; Cassandra's hash3_x64_128
// of it printed h1 = -9223372036854775808 and getToken gave
// 9223372036854775807.
func TestMurmur3Normalisation(t *testing.T) {
	key, err := hex.DecodeString("653cbefb85ec3111b4e38fa9bc7cbcae")
	if err != nil {
		t.Fatal(err)
	}
	if h := murmur3H1(key); h != math.MinInt64 {
		t.Fatalf("murmur3H1 = %d, want MinInt64", h)
	}
	if got := (Murmur3{}).Token(key); got != math.MaxInt64 {
		t.Fatalf("Token = %d, want MaxInt64", got)
	}
	if normalize(math.MinInt64) != math.MaxInt64 || normalize(math.MaxInt64) != math.MaxInt64 ||
		normalize(0) != 0 || normalize(-1) != -1 || normalize(math.MinInt64+1) != math.MinInt64+1 {
		t.Fatal("normalize is not Cassandra's")
	}
}

func TestMurmur3EmptyKey(t *testing.T) {
	var p Murmur3
	if got := p.Token(nil); got != 0 {
		t.Fatalf("Token(nil) = %d, want 0", got)
	}
	if got := p.Token([]byte{}); got != 0 {
		t.Fatalf("Token([]byte{}) = %d, want 0", got)
	}
	if !p.Range().Contains(p.Token(nil)) {
		t.Fatal("empty key's token outside the ring")
	}
}

// standardH1 is h1 of the reference (Austin Appleby's C) MurmurHash3_x64_128
// with seed 0: identical to Cassandra's except that tail bytes are taken
// unsigned.
func standardH1(key []byte) int64 {
	var h1, h2 uint64
	n := len(key)
	nb := n / 16
	for i := 0; i < nb; i++ {
		k1 := binary.LittleEndian.Uint64(key[16*i:])
		k2 := binary.LittleEndian.Uint64(key[16*i+8:])
		k1 *= murmurC1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= murmurC2
		h1 ^= k1
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729
		k2 *= murmurC2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= murmurC1
		h2 ^= k2
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	tail := key[16*nb:]
	var k1, k2 uint64
	for i := len(tail) - 1; i >= 0; i-- {
		if i >= 8 {
			k2 |= uint64(tail[i]) << (8 * uint(i-8))
		} else {
			k1 |= uint64(tail[i]) << (8 * uint(i))
		}
	}
	if len(tail) > 8 {
		k2 *= murmurC2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= murmurC1
		h2 ^= k2
	}
	if len(tail) > 0 {
		k1 *= murmurC1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= murmurC2
		h1 ^= k1
	}
	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	return int64(h1)
}

// TestMurmur3TailQuirk shows that the sign-extension quirk is exercised: for
// every tail length, a tail with a byte >= 0x80 gives a token different from
// the standard MurmurHash3, while a tail of bytes < 0x80 (or no tail) gives
// the same one.
func TestMurmur3TailQuirk(t *testing.T) {
	// The standard variant, for a key with no byte >= 0x80, is pinned to
	// Cassandra's published token (the two agree there).
	if got := standardH1([]byte("hello")); got != -3758069500696749310 {
		t.Fatalf("standardH1(hello) = %d", got)
	}
	for body := 0; body <= 32; body += 16 {
		for tl := 0; tl <= 15; tl++ {
			low := make([]byte, body+tl)
			for i := range low {
				low[i] = byte((0x11 + 3*i) & 0x7f) // all < 0x80
			}
			if murmur3H1(low) != standardH1(low) {
				t.Errorf("body %d tail %d: low bytes differ from standard", body, tl)
			}
			if tl == 0 {
				continue
			}
			for j := 0; j < tl; j++ {
				high := bytes.Clone(low)
				high[body+j] |= 0x80
				// A high byte in the last position of a tail word only
				// changes bits above 64, which do not exist: byte 7 of
				// k1 and byte 15 (never present) of k2.
				if j == 7 {
					if murmur3H1(high) != standardH1(high) {
						t.Errorf("body %d tail %d: high byte 7 should agree", body, tl)
					}
					continue
				}
				if murmur3H1(high) == standardH1(high) {
					t.Errorf("body %d tail %d high byte %d: Cassandra quirk not exercised", body, tl, j)
				}
			}
		}
	}
	// A body byte >= 0x80 is taken unsigned by both.
	k := bytes.Repeat([]byte{0xff}, 16)
	if murmur3H1(k) != standardH1(k) {
		t.Error("16 bytes of 0xff: body blocks must agree with standard")
	}
	// Key 00 00 00 00 00 00 00 80 (published above): the high byte is byte 7
	// of k1, so sign extension adds no bits and both variants agree.
	k = []byte{0, 0, 0, 0, 0, 0, 0, 0x80}
	if standardH1(k) != murmur3H1(k) {
		t.Error("byte 7 of a tail word: quirk is invisible, values must agree")
	}
	k = []byte{0x80}
	if standardH1(k) == (Murmur3{}).Token(k) {
		t.Error("key 80: standard MurmurHash3 must differ from Cassandra")
	}
}

// cassandraRef is a literal, slow transcription of Cassandra's
// hash3_x64_128 tail switch (fall-through cases 15..1, each byte cast
// (long) key.get(i), i.e. sign-extended). It cross-checks murmur3H1 under
// fuzzing and random tests.
func cassandraRef(key []byte) int64 {
	n := len(key)
	nb := n >> 4
	var h1, h2 uint64
	for i := 0; i < nb; i++ {
		var k1, k2 uint64
		for j := 0; j < 8; j++ {
			k1 += uint64(key[16*i+j]) << (8 * j)
			k2 += uint64(key[16*i+8+j]) << (8 * j)
		}
		k1 *= murmurC1
		k1 = k1<<31 | k1>>33
		k1 *= murmurC2
		h1 ^= k1
		h1 = h1<<27 | h1>>37
		h1 += h2
		h1 = h1*5 + 0x52dce729
		k2 *= murmurC2
		k2 = k2<<33 | k2>>31
		k2 *= murmurC1
		h2 ^= k2
		h2 = h2<<31 | h2>>33
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	off := nb * 16
	sx := func(i int) uint64 { return uint64(int64(int8(key[off+i]))) }
	var k1, k2 uint64
	rem := n & 15
	if rem >= 9 {
		for i := rem - 1; i >= 8; i-- {
			k2 ^= sx(i) << (8 * (i - 8))
		}
		k2 *= murmurC2
		k2 = k2<<33 | k2>>31
		k2 *= murmurC1
		h2 ^= k2
	}
	if rem >= 1 {
		for i := min(rem, 8) - 1; i >= 0; i-- {
			k1 ^= sx(i) << (8 * i)
		}
		k1 *= murmurC1
		k1 = k1<<31 | k1>>33
		k1 *= murmurC2
		h1 ^= k1
	}
	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	return int64(h1)
}

func TestMurmur3RandomAgainstRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 200)
	for it := 0; it < 20000; it++ {
		k := buf[:rng.IntN(len(buf)+1)]
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		if a, b := murmur3H1(k), cassandraRef(k); a != b {
			t.Fatalf("key %x: murmur3H1 %d, reference %d", k, a, b)
		}
	}
}

func TestMurmur3AllocsAndConcurrency(t *testing.T) {
	var p Partitioner = Murmur3{}
	key := []byte("0123456789abcdef0123456789abcdef!")
	if a := testing.AllocsPerRun(1000, func() { _ = p.Token(key) }); a != 0 {
		t.Fatalf("Murmur3.Token allocates %v times", a)
	}
	want := p.Token(key)
	done := make(chan Token)
	for g := 0; g < 8; g++ {
		go func() {
			var t Token
			for i := 0; i < 1000; i++ {
				t = p.Token(key)
			}
			done <- t
		}()
	}
	for g := 0; g < 8; g++ {
		if got := <-done; got != want {
			t.Fatalf("concurrent Token = %d, want %d", got, want)
		}
	}
}

func benchmarkMurmur3(b *testing.B, n int) {
	key := make([]byte, n)
	for i := range key {
		key[i] = byte(i*37 + 0x7b)
	}
	var p Murmur3
	var sink Token
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		sink ^= p.Token(key)
	}
	_ = sink
}

func BenchmarkMurmur3Token16(b *testing.B) { benchmarkMurmur3(b, 16) }
func BenchmarkMurmur3Token32(b *testing.B) { benchmarkMurmur3(b, 32) }
func BenchmarkMurmur3Token23(b *testing.B) { benchmarkMurmur3(b, 23) }

func FuzzMurmur3(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1})
	f.Add([]byte{0x80})
	f.Add([]byte("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\xc8\xc9\xca"))
	f.Add([]byte{0x65, 0x3c, 0xbe, 0xfb, 0x85, 0xec, 0x31, 0x11, 0xb4, 0xe3, 0x8f, 0xa9, 0xbc, 0x7c, 0xbc, 0xae})
	f.Fuzz(func(t *testing.T, key []byte) {
		var p Murmur3
		orig := bytes.Clone(key)
		tok := p.Token(key)
		if tok == math.MinInt64 {
			t.Fatalf("Token(%x) = MinInt64", key)
		}
		if !p.Range().Contains(tok) {
			t.Fatalf("Token(%x) = %d outside the ring", key, tok)
		}
		if !bytes.Equal(key, orig) {
			t.Fatal("Token modified its key")
		}
		if want := normalize(cassandraRef(key)); tok != want {
			t.Fatalf("Token(%x) = %d, reference %d", key, tok, want)
		}
	})
}
