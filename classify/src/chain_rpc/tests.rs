use super::*;

fn family(body: &str) -> Option<Family> {
    identify(body.as_bytes()).map(|c| c.family)
}

const ADDRESS: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const HASH: &str = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";

#[test]
fn what_web3_py_sends_is_ethereum() {
    for body in [
        r#"{"jsonrpc":"2.0","method":"eth_chainId","params":[],"id":1}"#.to_owned(),
        r#"{"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 0}"#.to_owned(),
        format!(r#"{{"jsonrpc":"2.0","method":"eth_getBalance","params":["{ADDRESS}","latest"],"id":2}}"#),
        format!(r#"{{"jsonrpc":"2.0","method":"eth_getTransactionReceipt","params":["{HASH}"],"id":3}}"#),
        r#"{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["0xf86c0a8502540be400825208944bbeeb066ed09b7aed07bf39eee0460dfa261520880de0b6b3a7640000801ca0"],"id":4}"#.to_owned(),
        format!(r#"{{"jsonrpc":"2.0","method":"eth_call","params":[{{"to":"{ADDRESS}","data":"0x70a08231"}},"latest"],"id":5}}"#),
        r#"{"jsonrpc":"2.0","method":"eth_getBlockByNumber","params":["0x1b4",true],"id":6}"#.to_owned(),
        r#"{"jsonrpc":"2.0","method":"eth_subscribe","params":["newHeads"],"id":7}"#.to_owned(),
        r#"{"jsonrpc":"2.0","method":"eth_feeHistory","params":[4,"latest",[25,75]],"id":8}"#.to_owned(),
    ] {
        assert_eq!(family(&body), Some(Family::Ethereum), "{body}");
    }
}

#[test]
fn a_batch_counts_its_requests_of_one_family() {
    let body = format!(
        r#"[{{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}},
            {{"jsonrpc":"2.0","method":"eth_getCode","params":["{ADDRESS}","latest"],"id":2}}]"#
    );
    let call = identify(body.as_bytes()).unwrap();
    assert_eq!(
        (call.family, call.method.as_str(), call.requests),
        (Family::Ethereum, "eth_blockNumber", 2)
    );
    // One malformed member spoils the batch.
    let spoiled = r#"[{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}, 5]"#;
    assert_eq!(family(spoiled), None);
}

#[test]
fn escaped_keys_are_what_every_json_parser_reads() {
    let body = r#"{"jsonrpc":"2.0","\u006dethod":"eth_chainId","params":[],"id":1}"#;
    assert_eq!(family(body), Some(Family::Ethereum));
}

#[test]
fn chain_words_outside_a_json_rpc_request_are_nothing() {
    for body in [
        // The method name as a value of some other object.
        r#"{"query":"eth_getBalance","params":["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"]}"#,
        // Form-encoded, plain text, a log line.
        "method=eth_sendRawTransaction&params=0xf86c",
        "eth_call 0x70a08231 latest",
        r#"{"level":"info","msg":"calling eth_call","id":3}"#,
        // JSON-RPC 2.0 of a language server.
        r#"{"jsonrpc":"2.0","id":1,"method":"textDocument/hover","params":{"textDocument":{"uri":"file:///a.rs"},"position":{"line":1,"character":2}}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":[]}"#,
        // Chain-looking names with parameters of the wrong kind.
        r#"{"jsonrpc":"2.0","method":"eth_getBalance","params":["alice","latest"],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x1234","latest"],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":["now"],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["hello world"],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"eth_madeUp","params":[],"id":1}"#,
        // Not JSON-RPC versions anyone speaks.
        r#"{"jsonrpc":"3.0","method":"eth_chainId","params":[],"id":1}"#,
        // Neither an id nor 2.0.
        r#"{"method":"getblockcount","params":[]}"#,
        "",
        "[]",
        "{",
    ] {
        assert_eq!(family(body), None, "{body}");
    }
}

#[test]
fn mining_calls_stay_stratums_never_a_chain_clients() {
    for body in [
        r#"{"jsonrpc":"2.0","method":"eth_getWork","params":[],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"eth_submitHashrate","params":["0x500000","0x59daa26581d0acd1fce254fb7e85952f4c09d0915afd33d3886cd914bc7d283c"],"id":1}"#,
        r#"{"jsonrpc":"1.0","id":"x","method":"getblocktemplate","params":[{"rules":["segwit"]}]}"#,
        r#"{"jsonrpc":"1.0","id":"x","method":"submitblock","params":["00000020ab"]}"#,
        r#"{"id":1,"method":"getwork","params":[]}"#,
    ] {
        assert_eq!(family(body), None, "{body}");
    }
}

#[test]
fn substrate_calls_by_their_namespaces_and_hex() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash","params":[0]}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"chain_subscribeNewHeads","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"state_getRuntimeVersion","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"state_call","params":["TransactionPaymentApi_query_info","0x2d0284","0xab"]}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"author_submitExtrinsic","params":["0x2d028400d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d01"]}"#,
        r#"{"jsonrpc":"2.0","id":6,"method":"state_getStorage","params":["0x26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"]}"#,
    ] {
        assert_eq!(family(body), Some(Family::Substrate), "{body}");
    }
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["transfer 5 to bob"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"state_call","params":["rm -rf /","0x00"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":["yesterday"]}"#,
        // A namespace word with a suffix of another shape.
        r#"{"jsonrpc":"2.0","id":1,"method":"state_Check-Health","params":[]}"#,
    ] {
        assert_eq!(family(body), None, "{body}");
    }
}

#[test]
fn bitcoin_core_calls_by_their_names_and_hashes() {
    for body in [
        r#"{"jsonrpc":"1.0","id":"curltest","method":"getblockchaininfo","params":[]}"#,
        r#"{"method":"getblockhash","params":[800000],"id":1}"#,
        r#"{"version":"1.1","method":"getblock","params":["00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054",1],"id":2}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"sendrawtransaction","params":["0200000001abcdef0123456789"]}"#,
    ] {
        assert_eq!(family(body), Some(Family::Bitcoin), "{body}");
    }
    for body in [
        r#"{"id":1,"method":"getblock","params":["latest"]}"#,
        r#"{"id":1,"method":"getblockcount","params":["x"]}"#,
    ] {
        assert_eq!(family(body), None, "{body}");
    }
}

#[test]
fn solana_calls_with_base58_and_base64() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"getLatestBlockhash","params":[{"commitment":"finalized"}]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"getBalance","params":["83astBRguLMdt2h5U1Tpdq5tjFoJ6noeGwaY3mDLVcri"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"sendTransaction","params":["AVXo5X7UNzpuOmYzkZ+fqHDGiRLTSMlWlUCcZKzEV5CIKlrdvZa3/2GrJJfPrXgZqJbYDaGiOnP99tI/sRJfiwwBAAEDRQ/n5E5CLbMbHanUG3+iVvBAWZu0WFM6NoB5xfybQ7kNwwgfIhv6odn2qTUu/gOisDtaeCW1qlwW/gx3ccr/4wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAvsInicc+E3IZzLqeA+iM5cn9kSaeFzOuClz1Z2kZQy0BAgIAAQwCAAAAAPIFKgEAAAA=",{"encoding":"base64"}]}"#,
    ] {
        assert_eq!(family(body), Some(Family::Solana), "{body}");
    }
    for body in [
        // A generic `getBalance` of some other service.
        r#"{"jsonrpc":"2.0","id":1,"method":"getBalance","params":["alice@example.org"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"getHealth"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"sendTransaction","params":["hi"]}"#,
    ] {
        assert_eq!(family(body), None, "{body}");
    }
}

#[test]
fn electrum_handshake_and_blockchain_calls() {
    for body in [
        r#"{"jsonrpc":"2.0","method":"server.version","params":["electrum/4.5.8","1.4"],"id":0}"#,
        r#"{"jsonrpc":"2.0","method":"server.version","params":["ElectrumX client",["1.4","1.4.2"]],"id":0}"#,
        r#"{"jsonrpc":"2.0","method":"blockchain.headers.subscribe","params":[],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"blockchain.scripthash.subscribe","params":["8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161"],"id":2}"#,
        r#"{"jsonrpc":"2.0","method":"blockchain.estimatefee","params":[2],"id":3}"#,
    ] {
        assert_eq!(family(body), Some(Family::Electrum), "{body}");
    }
    for body in [
        r#"{"jsonrpc":"2.0","method":"server.version","params":["my-app"],"id":0}"#,
        r#"{"jsonrpc":"2.0","method":"server.version","params":["my-app","latest"],"id":0}"#,
        r#"{"jsonrpc":"2.0","method":"blockchain.scripthash.subscribe","params":["bob"],"id":2}"#,
    ] {
        assert_eq!(family(body), None, "{body}");
    }
}

#[test]
fn engine_api_calls_by_version_and_hex_payloads() {
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"engine_exchangeCapabilities","params":[["engine_newPayloadV3","engine_forkchoiceUpdatedV3"]]}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"engine_forkchoiceUpdatedV3","params":[{"headBlockHash":"0x3b8fb240d288781d4aac94d3fd16809ee413bc99294a085798a589dae51ddd4a","safeBlockHash":"0x3b8fb240d288781d4aac94d3fd16809ee413bc99294a085798a589dae51ddd4a","finalizedBlockHash":"0x3b8fb240d288781d4aac94d3fd16809ee413bc99294a085798a589dae51ddd4a"},null]}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"engine_getPayloadV4","params":["0x0000000021f32cc1"]}"#,
    ] {
        assert_eq!(family(body), Some(Family::EngineApi), "{body}");
    }
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"engine_start","params":["fast"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"engine_newPayloadV3","params":[{"speed":"max"}]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"engine_newPayloadVx","params":["0x00"]}"#,
    ] {
        assert_eq!(family(body), None, "{body}");
    }
}

#[test]
fn hostile_input_never_panics() {
    let deep = "[".repeat(10_000);
    assert_eq!(family(&deep), None);
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"eth_chainId","params":[],"id":"{}"}}"#,
        "x".repeat(MAX_BODY)
    );
    assert_eq!(family(&big), None);
    for n in 0..64u8 {
        let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
        let _ = identify(&bytes);
    }
}
