//! The frame of every page: a header with the product name, and the page's heading and content.

use yew::prelude::*;

#[derive(Debug, Properties, PartialEq)]
pub struct ShellProps {
    pub title: AttrValue,
    #[prop_or_default]
    pub children: Html,
}

#[component]
pub fn Shell(props: &ShellProps) -> Html {
    html! {
        <>
            <header class="topbar">
                <span class="brand">{ "mailferry" }</span>
            </header>
            <main class="page" id="main">
                <h1>{ props.title.clone() }</h1>
                { props.children.clone() }
            </main>
        </>
    }
}
